"""``python -m mtlnb <stage> …``: one subcommand per stage of the study.

- ``corpus``: build (or finish) a synthetic Camera-PrIMuS corpus.
- ``render-audio``: render the audio of a real Camera-PrIMuS archive, as the baseline did.
- ``features``: compute the feature cache of a corpus folder (real or synthetic).
- ``reproduce``: run every notebook through papermill into a new run folder (the two studies side by side); with
  ``--corpus``, on a real Camera-PrIMuS archive (its audio rendered, its features cached, its folds given or made).
- ``transcribe``: one's own score photo (and a recording of it) through a trained fold: OMR, A2S and fused.
- ``sim2real``: a trained OMR or A2S run on any Camera-PrIMuS folder (real samples), or the sim-to-real
  decomposition of its error into music, engraving and camera.
- ``compare-runs``: two runs' scenario findings (notebook 05's tables) side by side: do they agree within their
  intervals?
- ``piano-corpus``: write (or finish) synthetic piano performances in the MAESTRO layout (csv + midi + wav).

Exit codes: 0 done; 2 an error, printed as one ``error: …`` line; 3 (:data:`LEFT_OUT`) ``corpus``, ``features`` or
``render-audio`` finished but left samples out (each is printed with its folder and reason above the summary).
"""

from __future__ import annotations

import argparse
import sys

from mtlnb.profiles import PROFILE_NAMES

LEFT_OUT = 3  # exit code: the build finished, but some samples were left out
# The camera distortion's configurations, the default first (distortion.CONFIGS and DEFAULT_CAMERA; named here
# because importing the distortion module loads OpenCV, which `--help` should not wait for).
CAMERAS = ("swept", "fitted", "calibrated", "literal")

REPRODUCE_HELP = """\
Run every notebook (01-08) with one profile into a new folder runs/<profile>-<time>/: the executed notebooks,
their logs, and index.md / index.json (status, times and key numbers of each notebook). Figures go to
figures/<profile>/, data, features and trained networks to data/ (MTLNB_DATA moves it).

Without --corpus the GradSPSA notebooks (01-05) build and use a synthetic corpus in the Camera-PrIMuS layout.
With --corpus PATH they use your copy of the real Camera-PrIMuS archive (Calvo-Zaragoza & Rizo, ISMIR 2018),
unpacked so that PATH/Corpus/<id>/ holds <id>.semantic and <id>_distorted.jpg. Before the notebooks run:
  1. the ids: --ids FILE (the cleansed list clean_samples.dat, 22,285 ids), else the test folds of --folds,
     else every sample; the list is written to PATH/clean_samples.dat, where the notebooks read it;
  2. the audio: <id>.wav is rendered for every id that lacks it (the archive has none), in PATH/Corpus/<id>/;
  3. the features: the image and CQT feature cache, in data/primus-real-<profile>/;
  4. the folds: --folds DIR (the late-fusion baseline's ScenarioX lists) or five folds made from the ids.
Steps 2-3 resume where an interrupted run stopped.

Examples:
  python -m mtlnb reproduce                                    # synthetic data, default profile
  python -m mtlnb reproduce --profile smoke --only 02          # one notebook
  python -m mtlnb reproduce --profile paper --corpus ~/camera-primus \\
      --ids ~/camera-primus/clean_samples.dat --folds ~/late-fusion/ScenarioX
"""

TRANSCRIBE_HELP = """\
Transcribe your own score: a photo of one staff (OMR) and, optionally, a recording of it (A2S), with the
networks a `reproduce` run trained. With a recording you get three transcriptions: omr, a2s, and fused (MBR
decoding of the two word graphs combined with weight --alpha on the image, the study's best method); with only
a photo, omr. Each is written as <name>.semantic (Camera-PrIMuS symbols), <name>.mid, <name>.mei and
<name>.png (its engraving); transcription.json records what was used.

The networks know only what they were trained on: one staff of monophonic incipits like Camera-PrIMuS's, its
symbols, and piano audio at a steady tempo (quarter = 0.5 s). Crop the photo to the staff.

Examples:
  python -m mtlnb transcribe --image staff.jpg --profile mini --out my-score
  python -m mtlnb transcribe --image staff.jpg --audio staff.wav --run data/primus-mini/models/fold0 --out my-score
"""


def _corpus(args) -> int:
    from mtlnb.camera_primus.corpus.synthetic import build_corpus

    report = build_corpus(args.out, args.n, seed=args.seed, jobs=args.jobs, soundfont=args.soundfont,
                          trim=args.trim, camera=args.camera)
    for sid, reason in sorted(report.failed.items()):
        print(f"  left out {sid} ({report.root / 'Corpus' / sid}): {reason}")
    print(report.summary())
    return LEFT_OUT if report.failed else 0


def _features(args) -> int:
    from mtlnb.camera_primus.corpus.feature_cache import FeatureSettings, build_cache
    from mtlnb.camera_primus.corpus.primus import corpus_dir, read_id_list

    ids = read_id_list(args.ids) if args.ids else None
    cache = build_cache(args.corpus, args.cache, FeatureSettings(dtype=args.dtype), ids=ids, jobs=args.jobs)
    print(f"{cache.root}: {len(cache.ids)} samples cached ({cache.nbytes() / 1e6:.1f} MB)")
    if cache.left_out:
        print(f"{len(cache.left_out)} left out:")
        for sid, reason in sorted(cache.left_out.items()):
            print(f"  {sid} ({corpus_dir(args.corpus) / sid}): {reason}")
    return LEFT_OUT if cache.left_out else 0


def _render_audio(args) -> int:
    from mtlnb.camera_primus.corpus.primus import corpus_dir, read_id_list
    from mtlnb.camera_primus.corpus.synthetic import render_audio

    ids = read_id_list(args.ids) if args.ids else None
    failed = render_audio(args.corpus, ids, jobs=args.jobs, soundfont=args.soundfont)
    folder = corpus_dir(args.corpus)
    for sid, reason in sorted(failed.items()):
        print(f"  left out {sid} ({folder / sid}): {reason}")
    print(f"audio rendered; {len(failed)} samples could not be rendered")
    return LEFT_OUT if failed else 0


def _reproduce(args) -> int:
    from mtlnb.reproduce import reproduce, reproduce_corpus

    if args.corpus is None:
        if args.folds or args.ids:
            raise ValueError("--folds and --ids describe a real archive: give it with --corpus")
        return reproduce(profile=args.profile, start=args.start, only=args.only, parallel=args.parallel,
                         refresh_notebooks=args.refresh_notebooks)
    if args.refresh_notebooks:
        raise ValueError("--refresh-notebooks: the committed notebooks show the synthetic study; a real archive's "
                         "run stays in its run folder")
    return reproduce_corpus(args.corpus, folds=args.folds, ids=args.ids, profile=args.profile, start=args.start,
                            only=args.only, parallel=args.parallel, jobs=args.jobs, soundfont=args.soundfont)


def _refresh_notebooks(args) -> int:
    from mtlnb import notebook_outputs
    from mtlnb.reproduce import NOTEBOOK_DIR

    written = notebook_outputs.refresh(args.run_dir, args.notebooks or NOTEBOOK_DIR)
    print(f"refreshed {len(written)} notebooks from {args.run_dir}: " + ", ".join(p.name for p in written))
    return 0


def _transcribe(args) -> int:
    from mtlnb.camera_primus.transcribe import transcribe

    if args.run is None and args.profile is None:
        raise ValueError("name the trained networks: --run FOLD_DIR, or --profile P [--fold K]")
    if args.run is not None and (args.profile is not None or args.fold is not None):
        raise ValueError("--run names the networks itself: give either --run or --profile/--fold")
    result = transcribe(args.image, args.audio, run=args.run, profile=args.profile, fold=args.fold,
                        alpha=args.alpha, out=args.out)
    s = result.summary
    print(f"{s['profile']} fold {s['fold']} ({s['fold_dir']}); read-off: {s['readoff_source']}")
    for name, tokens in result.tokens.items():
        shown = " ".join(tokens) if tokens else "(nothing recognised)"
        print(f"  {name:5s} {len(tokens):3d} symbols: {shown[:150]}{' …' if len(shown) > 150 else ''}")
    print(f"{len(result.files())} files in {result.out}: {', '.join(f'{n}.*' for n in result.tokens)} (.semantic, "
          f".mid, .mei, .png) and transcription.json; {s['seconds']:.1f} s")
    return 0


def _sim2real(args) -> int:
    from mtlnb.camera_primus.evaluation.sim2real import evaluate_study
    from mtlnb.camera_primus.study import primus_study
    from mtlnb.core import io
    from mtlnb.profiles import get_profile

    study = primus_study(get_profile(args.profile))
    text, document = evaluate_study(study, args.network, args.fold, args.corpus, args.image, args.decomposition,
                                    args.seed, args.camera)
    print(text)
    if args.json:
        io.write_json(args.json, document)
    return 0


def _compare_runs(args) -> int:
    from mtlnb.camera_primus.evaluation.agreement import compare

    result = compare(args.tables_a, args.tables_b, args.scheme)
    print(f"a = {args.tables_a}\nb = {args.tables_b}")
    print(result.summary())
    print("the two runs agree within their intervals" if result.agree else
          "the two runs DISAGREE beyond their intervals where marked above")
    if args.csv:
        from mtlnb.core import io

        io.write_text(args.csv, result.cells.to_csv(index=False))
    return 0


def _piano_corpus(args) -> int:
    from pathlib import Path

    from mtlnb.piano.performance import CONFIGS, generate

    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a file; give a folder for the dataset")
    df = generate(args.out, args.n, args.seconds, seed=args.seed, workers=args.jobs, config=CONFIGS[args.generator])
    counts = df["split"].value_counts()
    splits = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("train", "validation", "test"))
    print(f"{args.out}: {len(df)} {args.generator} performances, {df['duration'].sum() / 60:.1f} min of audio "
          f"({splits}) in the MAESTRO layout")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mtlnb", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("corpus", help="build a synthetic corpus in the Camera-PrIMuS layout")
    c.add_argument("--out", required=True, help="corpus root (Corpus/ and manifest.json go here)")
    c.add_argument("--n", type=int, required=True, help="number of samples")
    c.add_argument("--seed", type=int, default=42)
    c.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    c.add_argument("--soundfont", default=None, help="General MIDI .sf2 (default: $MTLNB_SOUNDFONT or Debian's)")
    c.add_argument("--trim", action="store_true",
                   help="delete samples beyond --n (without it a smaller --n than the corpus holds is an error)")
    c.add_argument("--camera", choices=CAMERAS, default=CAMERAS[0],
                   help="the camera distortion: swept (default, follows the real archive), fitted (torn openings "
                        "as a stretch), calibrated or literal (the recipe's ranges)")
    c.set_defaults(func=_corpus)

    f = sub.add_parser("features", help="compute the feature cache of a corpus folder")
    f.add_argument("--corpus", required=True, help="corpus root holding Corpus/")
    f.add_argument("--cache", default=None, help="cache folder (default: <corpus>/features-<settings hash>)")
    f.add_argument("--ids", default=None, help="id list file to restrict to (e.g. clean_samples.dat)")
    f.add_argument("--dtype", default="uint8", choices=["uint8", "float16"])
    f.add_argument("--jobs", type=int, default=None)
    f.set_defaults(func=_features)

    a = sub.add_parser("render-audio", help="render <id>.wav for a real Camera-PrIMuS archive (22,050 Hz)")
    a.add_argument("--corpus", required=True, help="corpus root holding Corpus/")
    a.add_argument("--ids", default=None, help="id list file to restrict to (e.g. clean_samples.dat)")
    a.add_argument("--jobs", type=int, default=None)
    a.add_argument("--soundfont", default=None)
    a.set_defaults(func=_render_audio)

    r = sub.add_parser(
        "reproduce", help="run every notebook through papermill into runs/<profile>-<time>/ (on the synthetic "
                          "data, or on a real Camera-PrIMuS archive with --corpus)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=REPRODUCE_HELP)
    r.add_argument("--profile", choices=list(PROFILE_NAMES), default=None,
                   help="default: smoke under CI, paper with CUDA, mini otherwise")
    r.add_argument("--corpus", default=None, metavar="PATH",
                   help="a real Camera-PrIMuS archive: the folder holding Corpus/<id>/ (default: the synthetic "
                        "corpus of the profile, built by notebook 01)")
    r.add_argument("--folds", default=None, metavar="DIR",
                   help="with --corpus: the late-fusion baseline's fold lists, the folder ScenarioX/ holding "
                        "{train,val,test}_gt_fold{0..4}.dat (or the folder above it, which may also hold "
                        "Scenario1..9/); default: five folds made from the ids, seeded")
    r.add_argument("--ids", default=None, metavar="FILE",
                   help="with --corpus: the ids to use, one per line (the cleansed list clean_samples.dat); "
                        "default: <corpus>/clean_samples.dat where present, else the test folds of --folds, "
                        "else every sample folder")
    r.add_argument("--jobs", type=int, default=None, help="with --corpus: worker processes for the audio and "
                                                          "features (default: all cores)")
    r.add_argument("--soundfont", default=None, help="with --corpus: General MIDI .sf2 for the audio "
                                                     "(default: $MTLNB_SOUNDFONT or Debian's)")
    r.add_argument("--from", dest="start", default=None, help="start at this notebook (name or number, e.g. 03)")
    r.add_argument("--only", default=None, help="run just this notebook")
    mode = r.add_mutually_exclusive_group()
    mode.add_argument("--parallel", dest="parallel", action="store_true",
                      help="the GradSPSA (01-05) and piano (06-08) tracks side by side, cores shared between them")
    mode.add_argument("--serial", dest="parallel", action="store_false", help="one notebook after another")
    r.add_argument("--refresh-notebooks", action="store_true",
                   help="after a run without failure, copy the executed notebooks over notebooks/ (cleaned, the run "
                        "recorded in their metadata): how the committed outputs are made")
    r.set_defaults(func=_reproduce, parallel=None)  # None: side by side with >= 2 cores and > 1 track selected

    n = sub.add_parser("refresh-notebooks", help="copy the executed notebooks of a finished reproduce run over "
                                                 "notebooks/, cleaned, the run recorded in their metadata")
    n.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, e.g. runs/mini-20261207-120000")
    n.add_argument("--notebooks", default=None, metavar="DIR", help="default: the project's notebooks/")
    n.set_defaults(func=_refresh_notebooks)

    t = sub.add_parser(
        "transcribe", help="transcribe your own score photo (and a recording of it) with a trained fold: "
                           "OMR, A2S and the two fused",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=TRANSCRIBE_HELP)
    t.add_argument("--image", required=True, metavar="PHOTO",
                   help="a photo or scan of ONE staff of monophonic music, cropped to it (as Camera-PrIMuS's "
                        "images): JPG, PNG or any format OpenCV reads")
    t.add_argument("--audio", default=None, metavar="RECORDING",
                   help="a recording of the same music (WAV, FLAC, OGG; any rate); without it: OMR alone")
    t.add_argument("--run", default=None, metavar="FOLD_DIR",
                   help="the trained fold to use: <study>/models/fold<k>, holding omr/ and a2s/ "
                        "(e.g. data/primus-mini/models/fold0)")
    t.add_argument("--profile", choices=list(PROFILE_NAMES), default=None,
                   help="instead of --run: the synthetic study this profile's `reproduce` trained "
                        "(data/primus-<profile>; a real archive's study: "
                        "--run data/primus-real-<profile>/models/fold0)")
    t.add_argument("--fold", type=int, default=None, help="with --profile: which fold's networks (default 0)")
    t.add_argument("--alpha", type=float, default=0.5,
                   help="weight of the image in the fusion, 0..1 (1: OMR only, 0: A2S only; default 0.5, the "
                        "thesis's)")
    t.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: omr.*, a2s.*, fused.* (.semantic, .mid, .mei, .png) and transcription.json")
    t.set_defaults(func=_transcribe)

    s = sub.add_parser("sim2real", help="a study's trained OMR/A2S run on real samples, or its sim-to-real "
                                        "decomposition (music, engraving, camera)")
    s.add_argument("--profile", choices=list(PROFILE_NAMES), required=True, help="the study the run is of")
    s.add_argument("--network", choices=["omr", "a2s"], required=True,
                   help="which trained run of the fold: the OMR (notebook 02) or the baseline A2S (notebook 03)")
    s.add_argument("--fold", type=int, default=0, help="the fold whose run is evaluated (default 0)")
    s.add_argument("--corpus", default=None, help="Camera-PrIMuS folder to evaluate (default: the fold's test set)")
    s.add_argument("--image", choices=["distorted", "clean"], default="distorted", help="the OMR's input image")
    s.add_argument("--decomposition", default=None, metavar="SAMPLES_ROOT",
                   help="real samples (.semantic, .png, _distorted.jpg): the five-row decomposition instead")
    s.add_argument("--seed", type=int, default=0, help="the decomposition's engraving and camera seed")
    s.add_argument("--camera", choices=CAMERAS, default=None,
                   help="the decomposition's camera (default: the one the study's synthetic corpus was built with)")
    s.add_argument("--json", default=None, help="write the summary and every sample's hypothesis here")
    s.set_defaults(func=_sim2real)

    cr = sub.add_parser("compare-runs", help="two runs' scenario findings side by side: do they agree within their "
                                             "intervals?",
                        description="Compare notebook 05's saved tables of two runs (figures/<profile>/tables of "
                                    "each): every SER both runs can read, with its 95 %% interval, the headline "
                                    "and the findings' counts. Two runs agree where their intervals overlap.")
    cr.add_argument("tables_a", help="the first run's tables folder (figures/<profile>/tables)")
    cr.add_argument("tables_b", help="the second run's tables folder")
    cr.add_argument("--scheme", choices=["kfold", "validation"], default="kfold",
                    help="which cross-validation scheme's SERs to compare (default kfold, as the findings)")
    cr.add_argument("--csv", default=None, help="also write every compared SER cell here")
    cr.set_defaults(func=_compare_runs)

    pc = sub.add_parser("piano-corpus", help="write synthetic piano performances in the MAESTRO layout",
                        description="Write synthetic piano performances in the MAESTRO layout (maestro-v3.0.0.csv, "
                                    "synthetic/*.midi and 44.1 kHz *.wav), which the piano study reads like "
                                    "MAESTRO itself. Each piece depends only on --seed and its index; rerun the "
                                    "same command to finish an interrupted run.")
    pc.add_argument("--out", required=True, help="dataset folder (the CSV, synthetic/ and synthetic.json go here)")
    pc.add_argument("--n", type=int, required=True, help="number of performances")
    pc.add_argument("--seconds", type=float, default=60.0, help="length of each performance (default 60, as mini)")
    pc.add_argument("--seed", type=int, default=0, help="pieces depend only on the seed and their index "
                                                        "(default 0, the piano study's)")
    pc.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    pc.add_argument("--generator", choices=["pianist", "simple"], default="pianist",
                    help="pianist: tuned to MAESTRO's statistics (default); simple: the first generator")
    pc.set_defaults(func=_piano_corpus)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
