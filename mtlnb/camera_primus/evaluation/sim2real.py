"""Sim-to-real evaluation: how a network trained on the synthetic corpus transcribes real Camera-PrIMuS samples, and
which stage of the synthetic pipeline the gap comes from.

- :func:`evaluate_folder` decodes every sample of a folder in the Camera-PrIMuS layout (``<root>/Corpus/<id>/…`` or
  ``<root>/<id>/…``) with a trained OMR or A2S run and returns the per-sample transcriptions and a summary
  (:func:`summarize`).
- :func:`decomposition` splits the gap between the synthetic test fold and real camera images into the shares of
  the music, the engraving and the camera, with five conditions of the same real samples:

  ===  ===================================================================  =====================================
  row  OMR input                                                            isolates
  ===  ===================================================================  =====================================
  (a)  the study's synthetic test fold                                      (the network's own distribution)
  (b)  the real samples' semantic through our pipeline: PAE → our           the music (b − a)
       engraving → our camera → JPEG
  (c)  the real clean ``<id>.png`` (Verovio 2 engraving), no camera         (reported, not a share)
  (d)  the real clean ``<id>.png`` through our camera → JPEG                the engraving (d − b)
  (e)  the real ``<id>_distorted.jpg`` (the archive's camera)               the camera (e − d)
  ===  ===================================================================  =====================================

  (b) and (d) draw the camera's parameters from the same seeded generator per sample, so the two differ only by
  the engraving underneath.  Rows (b)-(e) hold the same samples: one that our pipeline cannot build for (b) is
  left out of all four and listed.

Choices
-------
- **Greedy decoding** (:func:`mtlnb.camera_primus.networks.ctc_tasks.greedy_decode`), one sample at a time: the
  network's unimodal output, as in validation, without a language model.
- **Inputs as training saw them**: image features (:func:`mtlnb.camera_primus.corpus.features.image_features`) and
  the CQT image before its resize are rounded to 8 bits, as the feature cache stores them
  (:mod:`mtlnb.camera_primus.corpus.feature_cache`), so a synthetic sample decodes exactly as in validation.
- **Reduced SERs** over the same reference symbols (:mod:`mtlnb.camera_primus.notation.semantic`'s reductions):
  ignoring accidentals, ignoring durations, and both (pitch letter and octave only).
- **Signature accuracy**: the first clef, key-signature and time-signature token of hypothesis and reference are
  compared; a reference without one counts as right when the hypothesis has none either.  The single-folder
  report also lists the wrong readings (:func:`signature_confusions`): which signature was read as which tells a
  miscount (three sharps read as two) from a lost glyph (a key read as none) or a confusable one (cut time ``C/``
  read as common time ``C``).
- **Intervals** (:func:`intervals`): a folder of a few dozen real samples gives a corpus SER several points wide,
  so the single-folder report adds percentile bootstrap intervals (the samples resampled with replacement) of the
  SER and the pitch-only SER.
- **Audio for A2S** is rendered, where a folder has none, into a temporary mirror of the folder (as
  ``python -m mtlnb render-audio`` renders it), never into the folder read.
"""

from __future__ import annotations

import collections
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from mtlnb.camera_primus import metrics
from mtlnb.camera_primus.corpus import features, primus
from mtlnb.camera_primus.corpus.datasets import Vocabulary
from mtlnb.camera_primus.evaluation import bootstrap
from mtlnb.camera_primus.networks import ctc_tasks, runs
from mtlnb.camera_primus.notation import semantic
from mtlnb.core import io
from mtlnb.profiles import TrainProfile, get_profile

IMAGES = ("distorted", "clean")  # which image of a sample the OMR reads
SIGNATURES = {"clef": "clef", "key": "keySignature", "time": "timeSignature"}  # summary name -> token kind
SUMMARY_COLUMNS = ("n", "ser", "ser_no_accidentals", "ser_no_durations", "ser_pitch", "clef_right", "key_right",
                   "time_right", "oov_share")
CONDITIONS = {  # decomposition rows, in order
    "a": "synthetic test fold",
    "b": "real semantic, our engraving + camera",
    "c": "real clean PNG",
    "d": "real clean PNG + our camera",
    "e": "real distorted JPG",
}
SHARES = {"music": ("b", "a"), "engraving": ("d", "b"), "camera": ("e", "d")}  # share -> (row, minus row)


# -- metrics --------------------------------------------------------------------------------------------------------

def first_of(tokens: Sequence[str], kind: str) -> str | None:
    """The first token of ``kind`` (``"clef"``, ``"keySignature"``, ``"timeSignature"``), or None."""
    return next((t for t in tokens if t.startswith(kind + "-")), None)


def signature_right(hypothesis: Sequence[str], reference: Sequence[str], kind: str) -> bool:
    """Whether the hypothesis's first ``kind`` token is the reference's (both absent counts as right)."""
    return first_of(hypothesis, kind) == first_of(reference, kind)


def signature_confusions(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]],
                         kind: str) -> list[tuple[str, str, int]]:
    """The wrong readings of the first ``kind`` token (:func:`signature_right` false), most frequent first.

    Returns
    -------
    list of (reference, read, count)
        The tokens' values (``"AM"`` for ``keySignature-AM``, ``"C/"`` for ``timeSignature-C/``), ``"none"``
        where a sequence has no ``kind`` token; ties in alphabetical order.
    """
    def value(token: str | None) -> str:
        return "none" if token is None else token.split("-", 1)[1]

    counts = collections.Counter((value(first_of(r, kind)), value(first_of(h, kind)))
                                 for r, h in zip(references, hypotheses) if not signature_right(h, r, kind))
    return [(ref, read, n) for (ref, read), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def summarize(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]],
              vocabulary: Vocabulary | None = None) -> dict:
    """The summary of a set of transcriptions.

    Parameters
    ----------
    references, hypotheses : sequences of token sequences, equal lengths n >= 1
    vocabulary : Vocabulary, optional
        The run's symbols, for ``oov_share`` (NaN without it).

    Returns
    -------
    dict
        ``n``; in percent: ``ser`` (corpus SER), ``ser_no_accidentals``, ``ser_no_durations``, ``ser_pitch``
        (both reductions: pitch letter and octave only), ``clef_right``, ``key_right``, ``time_right``
        (:func:`signature_right`), ``oov_share`` (reference tokens outside the vocabulary).
    """
    refs, hyps = [list(r) for r in references], [list(h) for h in hypotheses]
    out = {"n": len(refs), "ser": metrics.ser(hyps, refs)}
    for name, reduce in (("ser_no_accidentals", semantic.without_accidentals),
                         ("ser_no_durations", semantic.without_durations), ("ser_pitch", semantic.pitch_skeleton)):
        out[name] = metrics.ser([reduce(h) for h in hyps], [reduce(r) for r in refs])
    for name, kind in SIGNATURES.items():
        out[f"{name}_right"] = 100.0 * float(np.mean([signature_right(h, r, kind) for h, r in zip(hyps, refs)]))
    if vocabulary is None:
        out["oov_share"] = float("nan")
    else:
        known = vocabulary.index
        out["oov_share"] = 100.0 * sum(t not in known for r in refs for t in r) / sum(len(r) for r in refs)
    return out


def intervals(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]],
              n_boot: int = bootstrap.DEFAULT_N_BOOT, seed: int = 0,
              level: float = bootstrap.DEFAULT_LEVEL) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals (percent) of the corpus SER and the pitch-only SER of a set of transcriptions.

    The samples are resampled with replacement ``n_boot`` times (seeded by ``seed``); a resample's rate is its
    summed edit distance over its summed reference length, as :func:`summarize`'s.

    Returns
    -------
    dict
        ``{"ser": (low, high), "ser_pitch": (low, high)}``.
    """
    refs, hyps = [list(r) for r in references], [list(h) for h in hypotheses]
    counts = bootstrap.resample_counts(len(refs), n_boot, np.random.default_rng(seed)).astype(np.float64)
    out = {}
    for name, reduce in (("ser", list), ("ser_pitch", semantic.pitch_skeleton)):
        r, h = [reduce(x) for x in refs], [reduce(x) for x in hyps]
        errors = metrics.edit_distances(h, r).astype(np.float64)
        lengths = np.array([len(x) for x in r], dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):  # a resample of empty references: undefined
            rates = 100.0 * (counts @ errors) / (counts @ lengths)
        low, high = bootstrap.percentile_interval(rates, level)
        out[name] = (float(low), float(high))
    return out


# -- inputs ---------------------------------------------------------------------------------------------------------

def _as_cached(x: np.ndarray) -> np.ndarray:
    """Features in [0, 1] rounded to 8 bits, as the feature cache stores them (float32)."""
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.float32) / np.float32(255.0)


def image_input(path: str | os.PathLike) -> np.ndarray:
    """The OMR input of one image file: float32 ``(64, W)``, as training read it from the feature cache."""
    return _as_cached(features.image_features(path))


def audio_input(path: str | os.PathLike) -> np.ndarray:
    """The A2S input of one audio file: float32 ``(256, W)``, as training read it from the feature cache (mono,
    resampled to 22,050 Hz where needed)."""
    import soundfile as sf

    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != features.CQT_SR:
        import librosa

        audio = librosa.resample(audio, orig_sr=sr, target_sr=features.CQT_SR)
    return features.resize_cqt(_as_cached(features.cqt_scaled(audio, features.CQT_SR)))


def image_paths(corpus_root: str | os.PathLike, ids: Sequence[str], image: str = "distorted") -> dict[str, Path]:
    """``{id: <id>_distorted.jpg}`` (``image="distorted"``) or ``{id: <id>.png}`` (``"clean"``) of a corpus."""
    if image not in IMAGES:
        raise ValueError(f"image must be one of {IMAGES}, got {image!r}")
    corpus = primus.PrimusCorpus(corpus_root)
    return {sid: getattr(corpus.paths(sid), image) for sid in ids}


def audio_paths(corpus_root: str | os.PathLike, ids: Sequence[str], workdir: str | os.PathLike,
                jobs: int | None = 1) -> tuple[dict[str, Path], dict[str, str]]:
    """``{id: <id>.wav}`` of a corpus, rendering the missing ones into ``workdir`` (a mirror of the folder holding
    only their ``.semantic``) with :func:`mtlnb.camera_primus.corpus.synthetic.render_audio`.

    Returns the paths and the samples that could not be rendered (id → reason)."""
    corpus = primus.PrimusCorpus(corpus_root)
    paths = {sid: corpus.paths(sid).audio for sid in ids}
    missing = [sid for sid, p in paths.items() if not p.is_file()]
    if not missing:
        return paths, {}
    from mtlnb.camera_primus.corpus.synthetic import render_audio

    mirror = Path(workdir) / "Corpus"
    for sid in missing:
        (mirror / sid).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(corpus.paths(sid).semantic, mirror / sid / f"{sid}.semantic")
    failed = render_audio(mirror.parent, missing, jobs=jobs, progress=False)
    rendered = primus.PrimusCorpus(mirror.parent)
    for sid in missing:
        paths[sid] = rendered.paths(sid).audio
    return {sid: p for sid, p in paths.items() if sid not in failed}, failed


# -- transcription --------------------------------------------------------------------------------------------------

def transcribe(trained: runs.TrainedNetwork, inputs: Mapping[str, str | os.PathLike],
               read: Callable[[str | os.PathLike], np.ndarray]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Greedy transcriptions of input files, one at a time: ``({id: tokens}, {id: why it was left out})``.

    ``read`` turns a file into the network's ``(H, W)`` input (:func:`image_input` or :func:`audio_input`); a file
    it cannot read (``ValueError``, ``OSError``) is left out with the reason."""
    out, left_out = {}, {}
    blank = trained.vocabulary.blank
    with torch.no_grad():
        for sid, path in inputs.items():
            try:
                x = read(path)
            except (ValueError, OSError) as e:
                left_out[sid] = f"{Path(path).name}: {e}"
                continue
            log_probs = trained.model(torch.from_numpy(x)[None, None]).numpy()
            frames = int(trained.model.output_lengths(x.shape[1]))
            out[sid] = trained.vocabulary.decode(ctc_tasks.greedy_decode(log_probs, np.array([frames]), blank)[0])
    return out, left_out


@dataclass
class Evaluation:
    """Transcriptions of a folder by a run, with their summary (:func:`evaluate_folder`)."""

    run_dir: Path
    network: str
    epoch: int  # the checkpoint's training epoch
    samples: pd.DataFrame  # id, input (file read), reference, hypothesis (token lists), ser (%), clef_right,
    # key_right, time_right
    summary: dict  # summarize()
    left_out: dict[str, str] = field(default_factory=dict)  # id -> why it was not evaluated

    def to_json(self) -> dict:
        """Summary, and each sample's id, reference and hypothesis (enough to recompute every number)."""
        return {"run": str(self.run_dir), "network": self.network, "epoch": self.epoch, "summary": self.summary,
                "samples": [{"id": r.id, "reference": list(r.reference), "hypothesis": list(r.hypothesis)}
                            for r in self.samples.itertuples()],
                "left_out": self.left_out}


def _references(corpus_root: str | os.PathLike, ids: Sequence[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    corpus = primus.PrimusCorpus(corpus_root)
    refs, bad = {}, {}
    for sid in ids:
        try:
            refs[sid] = corpus.tokens(sid)
        except (ValueError, OSError) as e:
            bad[sid] = str(e)
    return refs, bad


def _evaluation(trained: runs.TrainedNetwork, run_dir: Path, references: Mapping[str, list[str]],
                hypotheses: Mapping[str, list[str]], inputs: Mapping[str, Path], left_out: Mapping[str, str]
                ) -> Evaluation:
    ids = [sid for sid in references if sid in hypotheses]
    if not ids:
        raise ValueError(f"no sample could be transcribed ({len(left_out)} left out, e.g. "
                         f"{dict(list(left_out.items())[:2])})")
    refs, hyps = [references[s] for s in ids], [hypotheses[s] for s in ids]
    rows = pd.DataFrame({"id": ids, "input": [str(inputs[s]) for s in ids], "reference": refs, "hypothesis": hyps,
                         "ser": metrics.sample_ser(hyps, refs)})
    for name, kind in SIGNATURES.items():
        rows[f"{name}_right"] = [signature_right(h, r, kind) for h, r in zip(hyps, refs)]
    return Evaluation(run_dir, trained.network, trained.epoch, rows, summarize(refs, hyps, trained.vocabulary),
                      dict(left_out))


def load_run(run_dir: str | os.PathLike, train_profile: TrainProfile | None = None) -> runs.TrainedNetwork:
    """:func:`mtlnb.camera_primus.networks.runs.load_network` of ``best.pt``, sized by ``train_profile`` or, by
    default, by the profile named in the run's ``run.json``."""
    run_dir = Path(run_dir)
    if train_profile is None:
        info_path = run_dir / runs.RUN_INFO
        if not info_path.is_file():
            raise ValueError(f"{run_dir} is not a training run: {runs.RUN_INFO} is missing")
        train_profile = get_profile(io.read_json(info_path).get("profile")).train
    return runs.load_network(run_dir, train_profile)


def evaluate_folder(run_dir: str | os.PathLike, corpus_root: str | os.PathLike, ids: Sequence[str] | None = None,
                    image: str | Mapping[str, str | os.PathLike] = "distorted",
                    train_profile: TrainProfile | None = None, trained: runs.TrainedNetwork | None = None,
                    jobs: int | None = 1) -> Evaluation:
    """Greedy transcriptions of a folder's samples by a trained OMR or A2S run, against their ``.semantic``.

    Parameters
    ----------
    run_dir : path
        A run folder (``best.pt``, ``vocabulary.json``, ``run.json``;
        :func:`mtlnb.camera_primus.networks.runs.train_network`).
    corpus_root : path
        A folder in the Camera-PrIMuS layout: ``<root>/Corpus/<id>/…`` or ``<root>/<id>/…``.
    ids : sequence of str, optional
        Default: every sample of the folder.
    image : {"distorted", "clean"} or mapping id -> image path
        OMR input: ``<id>_distorted.jpg``, ``<id>.png`` or any image per id.  Ignored by A2S runs, which read
        ``<id>.wav`` (rendered where missing, :func:`audio_paths`).
    train_profile : TrainProfile, optional
        The profile the run was trained with (default: the one its ``run.json`` names).
    trained : TrainedNetwork, optional
        The run's network, already loaded (:func:`load_run`); ``run_dir`` then only labels the result.
    jobs : int, optional
        Worker processes for rendering missing audio.

    Returns
    -------
    Evaluation
        Samples whose reference, image or audio cannot be read are left out and listed with the reason.
    """
    run_dir = Path(run_dir)
    trained = trained or load_run(run_dir, train_profile)
    ids = list(ids) if ids is not None else primus.PrimusCorpus(corpus_root).ids()
    references, left_out = _references(corpus_root, ids)
    ids = [sid for sid in ids if sid in references]
    if trained.network == "omr":
        paths = ({sid: Path(image[sid]) for sid in ids if sid in image} if isinstance(image, Mapping)
                 else image_paths(corpus_root, ids, image))
        left_out.update({sid: "no image given" for sid in ids if sid not in paths})
        hypotheses, unread = transcribe(trained, paths, image_input)
    else:
        with tempfile.TemporaryDirectory(prefix="mtlnb-sim2real-") as tmp:
            paths, failed = audio_paths(corpus_root, ids, tmp, jobs)
            left_out.update(failed)
            hypotheses, unread = transcribe(trained, paths, audio_input)
    left_out.update(unread)
    return _evaluation(trained, run_dir, references, hypotheses, paths, left_out)


# -- the decomposition ----------------------------------------------------------------------------------------------

def _camera_rng(seed: int, index: int) -> np.random.Generator:
    """Sample ``index``'s camera generator: the same stream for rows (b) and (d), and the stream the synthetic
    corpus gives the camera of its sample ``index`` (:func:`mtlnb.camera_primus.corpus.synthetic.sample_rngs`)."""
    from mtlnb.camera_primus.corpus import synthetic

    return synthetic.sample_rngs(index, seed)[2]


def our_images(tokens: Sequence[str], seed: int, index: int, camera=None) -> tuple[np.ndarray, np.ndarray]:
    """Clean and camera-distorted images of ``tokens`` by the synthetic corpus's own pipeline
    (:func:`mtlnb.camera_primus.corpus.synthetic.render_images` with the engraving and camera generators of sample
    ``index`` of a corpus of ``seed``).  ``camera``: a :class:`~mtlnb.camera_primus.corpus.distortion.DistortionConfig`
    (default: the synthetic corpus's).  Returns two uint8 ``(H, W)`` images."""
    from mtlnb.camera_primus.corpus import synthetic

    _, engrave_rng, distort_rng = synthetic.sample_rngs(index, seed)
    _, engraved, distorted = synthetic.render_images(list(tokens), engrave_rng, distort_rng, camera)
    return engraved.image, distorted


def through_camera(path: str | os.PathLike, seed: int, index: int, camera=None) -> np.ndarray:
    """A clean image file through our camera, with sample ``index``'s camera generator (:func:`our_images`)."""
    from mtlnb.camera_primus.corpus import distortion

    camera = camera if camera is not None else distortion.MEASURED_CAMERA_PRIMUS
    return distortion.distort(features.load_grayscale(path), _camera_rng(seed, index), camera)


def _real_ids(samples_root: str | os.PathLike, ids: Sequence[str] | None) -> tuple[list[str], dict[str, str]]:
    """The samples that have a ``.semantic``, a clean PNG and a distorted JPG; the others with the reason."""
    corpus = primus.PrimusCorpus(samples_root)
    wanted = list(ids) if ids is not None else corpus.ids()
    keep, left_out = [], {}
    for sid in wanted:
        p = corpus.paths(sid)
        missing = [f.name for f in (p.semantic, p.clean, p.distorted) if not f.is_file()]
        if missing:
            left_out[sid] = f"missing {', '.join(missing)}"
        else:
            keep.append(sid)
    return keep, left_out


def _simulate(samples_root, ids: Sequence[str], seed: int, camera, out: Path
              ) -> tuple[dict[str, Path], dict[str, Path], dict[str, str]]:
    """Rows (b) and (d)'s JPEGs in ``out``: ``({id: our pipeline's image}, {id: real clean + our camera},
    {id: why our pipeline failed})``."""
    from mtlnb.camera_primus.corpus import distortion

    corpus = primus.PrimusCorpus(samples_root)
    ours, camera_only, failed = {}, {}, {}
    for index, sid in enumerate(ids):
        try:
            _, image = our_images(corpus.tokens(sid), seed, index, camera)
            real = through_camera(corpus.paths(sid).clean, seed, index, camera)
        except Exception as e:  # noqa: BLE001 -- Verovio or the PAE writer rejecting a real incipit is a result
            failed[sid] = f"our pipeline: {type(e).__name__}: {e}"
            continue
        ours[sid], camera_only[sid] = out / "ours" / f"{sid}.jpg", out / "camera" / f"{sid}.jpg"
        distortion.save_distorted_jpg(image, ours[sid])
        distortion.save_distorted_jpg(real, camera_only[sid])
    return ours, camera_only, failed


@dataclass
class Decomposition:
    """The five conditions of :func:`decomposition`."""

    table: pd.DataFrame  # index: condition letter; columns: condition (words) + SUMMARY_COLUMNS
    shares: pd.DataFrame  # index: music, engraving, camera; columns: rows, ser, ser_pitch (percentage points)
    evaluations: dict[str, Evaluation]  # condition letter -> its transcriptions
    left_out: dict[str, str]  # real sample id -> why rows (b)-(e) leave it out

    def to_json(self) -> dict:
        return {"conditions": {k: {"name": CONDITIONS[k], **ev.to_json()} for k, ev in self.evaluations.items()},
                "shares": {name: {"rows": row["rows"], "ser": row["ser"], "ser_pitch": row["ser_pitch"]}
                           for name, row in self.shares.iterrows()},
                "left_out": self.left_out}


def shares_of(table: pd.DataFrame) -> pd.DataFrame:
    """The music, engraving and camera shares (percentage points of SER and of pitch-only SER) of a decomposition
    table (:data:`SHARES`); NaN where a row is missing."""
    rows = []
    for name, (row, minus) in SHARES.items():
        have = row in table.index and minus in table.index
        rows.append({"share": name, "rows": f"({row}) - ({minus})",
                     **{c: float(table.at[row, c] - table.at[minus, c]) if have else float("nan")
                        for c in ("ser", "ser_pitch")}})
    return pd.DataFrame(rows).set_index("share")


def decomposition(run_dir: str | os.PathLike, samples_root: str | os.PathLike, seed: int = 0, *,
                  synthetic_root: str | os.PathLike | None = None, synthetic_ids: Sequence[str] | None = None,
                  ids: Sequence[str] | None = None, train_profile: TrainProfile | None = None, camera=None,
                  workdir: str | os.PathLike | None = None) -> Decomposition:
    """The sim-to-real gap of an OMR run split into music, engraving and camera (module docstring's table).

    Parameters
    ----------
    run_dir : path
        An OMR run folder.
    samples_root : path
        Real samples in the Camera-PrIMuS layout, each with ``.semantic``, ``<id>.png`` and ``<id>_distorted.jpg``.
    seed : int
        Seeds our engraving's beaming and our camera per sample (sample ``i`` of the sorted ids as synthetic
        sample ``i`` of a corpus of this seed); the result is deterministic under it.
    synthetic_root, synthetic_ids : optional
        Row (a): the study's synthetic corpus and its test fold's ids (no row (a) without them).
    ids : sequence of str, optional
        Real samples to use (default all).
    train_profile : TrainProfile, optional
        Default: the profile the run's ``run.json`` names.
    camera : DistortionConfig, optional
        Our camera for rows (b) and (d) (default: the synthetic corpus's).
    workdir : path, optional
        Where rows (b) and (d)'s JPEGs are written and kept (default: a temporary folder, removed).

    Returns
    -------
    Decomposition
    """
    trained = load_run(run_dir, train_profile)
    if trained.network != "omr":
        raise ValueError("decomposition splits the OMR's gap by image stage; an A2S run reads no image "
                         "(use evaluate_folder)")
    evaluations = {}
    if synthetic_root is not None:
        evaluations["a"] = evaluate_folder(run_dir, synthetic_root, synthetic_ids, trained=trained)
    real_ids, left_out = _real_ids(samples_root, ids)
    with tempfile.TemporaryDirectory(prefix="mtlnb-sim2real-") as tmp:
        out = Path(workdir) if workdir is not None else Path(tmp)
        ours, camera_only, failed = _simulate(samples_root, real_ids, seed, camera, out)
        left_out.update(failed)
        real_ids = [sid for sid in real_ids if sid not in failed]
        if not real_ids:
            raise ValueError(f"{samples_root}: no real sample to evaluate ({len(left_out)} left out, e.g. "
                             f"{dict(list(left_out.items())[:2])})")
        for row, image in (("b", ours), ("c", "clean"), ("d", camera_only), ("e", "distorted")):
            evaluations[row] = evaluate_folder(run_dir, samples_root, real_ids, image, trained=trained)
    table = pd.DataFrame([{"condition": k, "name": CONDITIONS[k], **evaluations[k].summary}
                          for k in CONDITIONS if k in evaluations]).set_index("condition")
    return Decomposition(table, shares_of(table), evaluations, left_out)


def format_table(table: pd.DataFrame) -> str:
    """A summary table as aligned text (percentages with one decimal)."""
    shown = table.copy()
    for column in shown.columns:
        if column in SUMMARY_COLUMNS and column != "n":
            shown[column] = shown[column].map(lambda v: f"{v:.1f}")
    return shown.to_string()



# -- a study's run --------------------------------------------------------------------------------------------------

def study_run_dir(study, fold: int, network: str) -> Path:
    """The folder of run ``network`` of a study's fold; ``ValueError`` naming its maker when it holds no trained
    network."""
    run_dir = study.root / "models" / f"fold{fold}" / network  # study.model_dir's layout, without creating it
    if not (run_dir / "best.pt").is_file():
        raise ValueError(f"{run_dir} holds no trained {network} network: train it first ({runs.run_maker(network)})")
    return run_dir


def evaluate_study(study, network: str, fold: int = 0, corpus: str | os.PathLike | None = None,
                   image: str = "distorted", samples_root: str | os.PathLike | None = None,
                   seed: int = 0, camera: str | None = None) -> tuple[str, dict]:
    """What ``python -m mtlnb sim2real`` reports: the run ``network`` of a study's fold on a folder, or its
    decomposition.

    Parameters
    ----------
    study : mtlnb.camera_primus.study.PrimusStudy
    network : {"omr", "a2s"}
    fold : int
    corpus : path, optional
        Folder to evaluate (default: the study's own test fold of that fold).
    image : {"distorted", "clean"}
    samples_root : path, optional
        Real samples: compute the :func:`decomposition` instead (OMR only), row (a) on the study's test fold.
    seed : int
        The decomposition's seed.
    camera : str, optional
        The decomposition's camera by name (a key of
        :data:`mtlnb.camera_primus.corpus.distortion.CONFIGS`; default: the one the study's synthetic corpus was
        built with, :func:`mtlnb.camera_primus.corpus.synthetic.corpus_camera`).  A network trained
        on a corpus built with another camera is decomposed fairly with that one.

    Returns
    -------
    (str, dict)
        An aligned text table, and the JSON document (summary, and per sample its id, reference and hypothesis).
    """
    if network not in ("omr", "a2s"):
        raise ValueError(f"sim2real evaluates the omr and a2s runs, got {network!r}")
    run_dir = study_run_dir(study, fold, network)
    trained = load_run(run_dir, study.profile.train)
    head = f"{network} run {run_dir} (epoch {trained.epoch})"
    if samples_root is not None:
        from mtlnb.camera_primus.corpus import distortion, synthetic

        camera = camera or synthetic.corpus_camera(study.root)  # the camera the network was trained through
        config = distortion.config_named(camera)  # an unknown name: a ValueError naming the choices
        test_ids = list(study.folds[fold].test)
        result = decomposition(run_dir, samples_root, seed, synthetic_root=study.corpus_root,
                               synthetic_ids=test_ids, train_profile=study.profile.train, camera=config)
        head += f", camera {camera}, seed {seed}"
        shares = result.shares.map(lambda v: f"{v:.1f}" if isinstance(v, float) else v).to_string()
        text = f"{head}\n{format_table(result.table)}\n\nshares (percentage points)\n{shares}"
        if result.left_out:
            text += f"\n{len(result.left_out)} real samples left out: " + "; ".join(
                f"{k}: {v}" for k, v in sorted(result.left_out.items()))
        return text, {"run": str(run_dir), "network": network, "epoch": trained.epoch, "seed": seed,
                      "camera": camera, **result.to_json()}
    if corpus is None:
        ids, corpus = list(study.folds[fold].test), study.corpus_root
    else:
        ids = None
    ev = evaluate_folder(run_dir, corpus, ids, image, trained=trained)
    table = pd.DataFrame([{"folder": str(corpus), **ev.summary}]).set_index("folder")
    spread = intervals(ev.samples.reference, ev.samples.hypothesis)
    text = (f"{head}\n{format_table(table)}\n95 % intervals over the {len(ev.samples)} samples (bootstrap, "
            f"{bootstrap.DEFAULT_N_BOOT} resamples): SER [{spread['ser'][0]:.1f}, {spread['ser'][1]:.1f}], "
            f"pitch-only SER [{spread['ser_pitch'][0]:.1f}, {spread['ser_pitch'][1]:.1f}]")
    confusions = {name: signature_confusions(ev.samples.reference, ev.samples.hypothesis, kind)
                  for name, kind in SIGNATURES.items()}
    for name, wrong in confusions.items():
        if wrong:
            what = "clefs" if name == "clef" else f"{name} signatures"
            text += f"\n{what} read wrong (reference -> read, samples): " + ", ".join(
                f"{ref} -> {read} {n}" for ref, read, n in wrong)
    if ev.left_out:
        text += f"\n{len(ev.left_out)} samples left out: " + "; ".join(
            f"{k}: {v}" for k, v in sorted(ev.left_out.items())[:5])
    return text, {"corpus": str(corpus), "image": image if network == "omr" else "audio", **ev.to_json(),
                  "intervals": {k: list(v) for k, v in spread.items()},
                  "signature_confusions": {k: [list(c) for c in v] for k, v in confusions.items()}}
