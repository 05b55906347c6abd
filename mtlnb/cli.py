"""``python -m mtlnb <stage> …``: one subcommand per stage of the study.

- ``corpus``: build (or finish) a synthetic Camera-PrIMuS corpus.
- ``render-audio``: render the audio of a real Camera-PrIMuS archive, as the baseline did.
- ``features``: compute the feature cache of a corpus folder (real or synthetic).
- ``reproduce``: run every notebook through papermill into a new run folder (the two studies side by side).
- ``sim2real``: a trained OMR or A2S run on any Camera-PrIMuS folder (real samples), or the sim-to-real
  decomposition of its error into music, engraving and camera.

Exit codes: 0 done; 2 an error, printed as one ``error: …`` line; 3 (:data:`LEFT_OUT`) ``corpus``, ``features`` or
``render-audio`` finished but left samples out (each is printed with its folder and reason above the summary).
"""

from __future__ import annotations

import argparse
import sys

LEFT_OUT = 3  # exit code: the build finished, but some samples were left out


def _corpus(args) -> int:
    from mtlnb.camera_primus.corpus.synthetic import build_corpus

    report = build_corpus(args.out, args.n, seed=args.seed, jobs=args.jobs, soundfont=args.soundfont,
                          trim=args.trim)
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
    from mtlnb.reproduce import reproduce

    return reproduce(profile=args.profile, start=args.start, only=args.only, parallel=args.parallel)


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

    r = sub.add_parser("reproduce", help="run every notebook through papermill into runs/<profile>-<time>/")
    r.add_argument("--profile", choices=["smoke", "mini", "paper"], default=None,
                   help="default: smoke under CI, paper with CUDA, mini otherwise")
    r.add_argument("--from", dest="start", default=None, help="start at this notebook (name or number, e.g. 03)")
    r.add_argument("--only", default=None, help="run just this notebook")
    mode = r.add_mutually_exclusive_group()
    mode.add_argument("--parallel", dest="parallel", action="store_true",
                      help="the GradSPSA (01-05) and piano (06-08) tracks side by side, cores shared between them")
    mode.add_argument("--serial", dest="parallel", action="store_false", help="one notebook after another")
    r.set_defaults(func=_reproduce, parallel=None)  # None: side by side with >= 2 cores and > 1 track selected

    s = sub.add_parser("sim2real", help="a study's trained OMR/A2S run on real samples, or its sim-to-real "
                                        "decomposition (music, engraving, camera)")
    s.add_argument("--profile", choices=["smoke", "mini", "paper"], required=True, help="the study the run is of")
    s.add_argument("--network", choices=["omr", "a2s"], required=True,
                   help="which trained run of the fold: the OMR (notebook 02) or the baseline A2S (notebook 03)")
    s.add_argument("--fold", type=int, default=0, help="the fold whose run is evaluated (default 0)")
    s.add_argument("--corpus", default=None, help="Camera-PrIMuS folder to evaluate (default: the fold's test set)")
    s.add_argument("--image", choices=["distorted", "clean"], default="distorted", help="the OMR's input image")
    s.add_argument("--decomposition", default=None, metavar="SAMPLES_ROOT",
                   help="real samples (.semantic, .png, _distorted.jpg): the five-row decomposition instead")
    s.add_argument("--seed", type=int, default=0, help="the decomposition's engraving and camera seed")
    s.add_argument("--camera", choices=["fitted", "calibrated", "literal"], default=None,
                   help="the decomposition's camera (default: the synthetic corpus's)")
    s.add_argument("--json", default=None, help="write the summary and every sample's hypothesis here")
    s.set_defaults(func=_sim2real)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
