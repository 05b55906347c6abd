"""Build a synthetic corpus in Camera-PrIMuS's own layout.

Per sample (seeded by the corpus seed and the sample's index, so samples are independent of each other, of the
number of worker processes and of the order they run in)::

    incipit generator (cleansed: no multi-rests) → <id>.semantic
        → Plaine & Easie → regular_pae.pae → Verovio → <id>.mei, <id>.png
        → camera distortions (twelve steps) → <id>_distorted.jpg
        → semantic → MIDI (PrIMuS converter rules) → FluidSynth 22,050 Hz → <id>.wav

Robustness: a sample's files are written into a hidden ``Corpus/.<id>.partial/`` folder and the folder is renamed
to ``Corpus/<id>/`` only when all of them exist, so an interrupted build leaves no half-written sample; the next
build removes leftovers and continues with the missing ids.  A sample that fails (e.g. Verovio rejects it) is
reported with its id and reason in ``manifest.json`` and in the summary, never silently dropped.
"""

from __future__ import annotations

import os
import shutil
import traceback
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from mtlnb.core import io
from mtlnb.camera_primus.corpus import primus

MANIFEST = "manifest.json"
# Workers are spawned, not forked: a fork of a process that already ran FluidSynth (or torch threads) can deadlock.
SPAWN = multiprocessing.get_context("spawn")
SAMPLE_RATE = 22050  # the baseline's rendering rate
ID_FORMAT = "syn{index:06d}"  # "syn" marks synthetic ids; real ids look like 211010522-1_1_1
# 22 of the 36 real samples (of the 60 in the reference) that have notes shorter than a quarter beam them.
BEAM_PROBABILITY = 22 / 36
# Camera-PrIMuS's PAE (and so its images) does not carry an accidental through the bar although its semantic
# pitches are absolute: `Eb4 E4` is engraved `bE E`.  We reproduce the corpus as it is (carry=False), so that OMR
# trained on synthetic images meets the same ambiguity it meets on real data.
CARRY_ACCIDENTALS = False


@dataclass(frozen=True)
class BuildSettings:
    """Everything that determines a synthetic corpus's bytes (recorded in its manifest)."""

    seed: int = 42  # corpus seed; sample i uses SeedSequence([seed, i])
    soundfont: str = ""  # resolved soundfont path (its SHA-256 is recorded beside it)
    soundfont_sha256: str = ""
    sample_rate: int = SAMPLE_RATE
    jpeg_quality: int = 0  # 0: the distortion module's default (matched to the real archive)
    cleansing: str = "no multirests"  # the selection that mimics the cleansed subset (see cleansed_incipit)
    versions: dict = field(default_factory=dict)  # verovio / fluidsynth / mtlnb versions


@dataclass
class BuildReport:
    """What a build did: counts and the left-out samples with their reasons."""

    root: Path
    requested: int
    built: int  # finished in this call
    reused: int  # already present from an earlier (possibly interrupted) call
    failed: dict[str, str]  # id -> reason

    def summary(self) -> str:
        s = (f"{self.root}: {self.built + self.reused}/{self.requested} samples ready "
             f"({self.built} built now, {self.reused} already there)")
        if self.failed:
            s += f"; {len(self.failed)} left out: " + "; ".join(f"{k}: {v}" for k, v in sorted(self.failed.items()))
        return s


def sample_id(index: int) -> str:
    return ID_FORMAT.format(index=index)


def _versions() -> dict:
    import verovio

    import mtlnb

    return {"mtlnb": mtlnb.__version__, "verovio": verovio.toolkit().getVersion()}


def resolve_settings(seed: int, soundfont: str | os.PathLike | None = None) -> BuildSettings:
    from mtlnb.core.synthesis import find_soundfont

    sf_path = find_soundfont(soundfont)
    return BuildSettings(seed=seed, soundfont=str(sf_path), soundfont_sha256=io.sha256_file(sf_path),
                         versions=_versions())


# --- one sample ---------------------------------------------------------------------------------------------------

_renderer = None  # one FluidSynth renderer per worker process


def _worker_init(sample_rate: int, soundfont: str) -> None:
    global _renderer
    from mtlnb.core.synthesis import Renderer

    _renderer = Renderer(sample_rate, soundfont)


def cleansed_incipit(rng: np.random.Generator) -> list[str]:
    """An incipit of the kind the cleansed Camera-PrIMuS subset holds: one without multi-rests.

    The baseline's cleansing is said to remove samples with long multi-rests (their audio is mostly silence while
    the image shows one symbol).  In the 60 real reference samples, none of the 13 cleansed ones has a multi-rest
    and 19 of the 47 others do, so we draw incipits until one has none (about 35 % are redrawn).  Without this rule
    a few synthetic incipits last minutes (multirest-98 in a slow meter), which the A2S network cannot learn from.
    """
    from mtlnb.camera_primus.corpus import incipits

    while True:
        tokens = incipits.generate_incipit(rng)
        if not any(t.startswith("multirest-") for t in tokens):
            return tokens


def make_sample(index: int, seed: int) -> dict:
    """Generate one sample in memory: tokens, PAE, MEI, clean PNG, distorted image, audio.

    Returns a dict of file name → bytes or arrays, ready for :func:`write_sample`.
    """
    from mtlnb.camera_primus.notation import agnostic, semantic
    from mtlnb.camera_primus.corpus import distortion, engraving

    seq = np.random.SeedSequence([seed, index])
    gen_rng, engrave_rng, distort_rng = (np.random.default_rng(s) for s in seq.spawn(3))
    tokens = cleansed_incipit(gen_rng)
    pae = semantic.semantic_to_pae(tokens, carry=CARRY_ACCIDENTALS, beams=engrave_rng.random() < BEAM_PROBABILITY)
    engraved = engraving.engrave(pae)
    # The reference's twelve-step ranges with spread off and a narrower shear: measured on the 60 real pairs,
    # this matches the real images (the literal ranges leave hairy edges and widen images 4 px too much).
    distorted = distortion.distort(engraved.image, distort_rng, distortion.MEASURED_CAMERA_PRIMUS)
    audio = _renderer.render(semantic.semantic_to_midi(tokens))
    return {"tokens": tokens, "pae": pae, "agnostic": agnostic.semantic_to_agnostic(tokens, pae),
            "engraved": engraved, "distorted": distorted, "audio": audio}


def write_sample(folder: Path, sid: str, sample: dict, sample_rate: int) -> None:
    """Write one sample's files into ``folder`` (the hidden partial folder)."""
    from mtlnb.camera_primus.corpus import distortion

    from mtlnb.camera_primus.notation.agnostic import format_agnostic

    paths = primus.SamplePaths(sid, folder)
    io.write_text(paths.semantic, "\t".join(sample["tokens"]) + "\t")  # as the real files: trailing tab, no newline
    io.write_text(paths.pae, sample["pae"] + "\n")  # the real files end with a newline
    io.write_text(paths.agnostic, format_agnostic(sample["agnostic"]))
    io.write_text(paths.mei, sample["engraved"].mei)
    io.write_bytes(paths.clean, sample["engraved"].png)
    distortion.save_distorted_jpg(sample["distorted"], paths.distorted)
    with io.atomic_path(paths.audio) as tmp:
        sf.write(tmp, sample["audio"], sample_rate, subtype="PCM_16")


def _add_agnostic(folder: Path, sid: str) -> None:
    """Write ``<id>.agnostic`` for a sample built before mtlnb wrote it (it follows from the .semantic and PAE)."""
    from mtlnb.camera_primus.notation import agnostic, semantic

    paths = primus.SamplePaths(sid, folder)
    if paths.agnostic.exists() or not paths.semantic.exists() or not paths.pae.exists():
        return
    tokens = semantic.read_semantic(paths.semantic)
    symbols = agnostic.semantic_to_agnostic(tokens, paths.pae.read_text().strip())
    io.write_text(paths.agnostic, agnostic.format_agnostic(symbols))


def _build_one(args: tuple[int, int, str, int]) -> tuple[str, str | None]:
    index, seed, corpus, sample_rate = args
    sid = sample_id(index)
    final = Path(corpus) / sid
    partial = Path(corpus) / f".{sid}.partial"
    try:
        sample = make_sample(index, seed)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        write_sample(partial, sid, sample, sample_rate)
        os.replace(partial, final)  # the sample appears whole or not at all
        return sid, None
    except Exception as e:  # reported per sample, counted in the summary
        shutil.rmtree(partial, ignore_errors=True)
        reason = f"{type(e).__name__}: {e}".strip()
        if not str(e):
            reason += " " + traceback.format_exc(limit=2).splitlines()[-1]
        return sid, reason


# --- the corpus ---------------------------------------------------------------------------------------------------


def build_corpus(out: str | os.PathLike, n: int, seed: int = 42, jobs: int | None = None,
                 soundfont: str | os.PathLike | None = None, progress: bool = True) -> BuildReport:
    """Build (or finish building) a synthetic corpus of ``n`` samples under ``out/Corpus/``.

    Parameters
    ----------
    out : path
        Corpus root; ``out/manifest.json`` records the settings.  An existing root must have been built with the
        same settings (seed, soundfont and its checksum, sample rate, versions): otherwise ``ValueError``, since
        mixing samples from two settings would silently change the data.
    n : int
        Number of samples wanted; ids ``syn000000`` … are built if missing.  Growing ``n`` later extends the
        corpus with the same first samples.
    seed : int
        Corpus seed.
    jobs : int, optional
        Worker processes (default: all cores).
    soundfont : path, optional
        See :func:`mtlnb.core.synthesis.find_soundfont`.
    """
    if n < 1:
        raise ValueError(f"build_corpus: n must be positive, got {n}")
    out = Path(out)
    corpus = out / "Corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    settings = resolve_settings(seed, soundfont)
    manifest_path = out / MANIFEST
    previous_failed: dict[str, str] = {}
    if manifest_path.exists():
        manifest = io.read_json(manifest_path)
        if manifest["settings"] != asdict(settings):
            diff = {k: (manifest["settings"].get(k), v) for k, v in asdict(settings).items()
                    if manifest["settings"].get(k) != v}
            raise ValueError(f"{out} was built with other settings (old, new): {diff}; "
                             "choose another folder or delete this one")
        previous_failed = manifest.get("failed", {})
    io.write_json(manifest_path, {"kind": "mtlnb synthetic Camera-PrIMuS", "settings": asdict(settings),
                                  "n_requested": n, "complete": False, "failed": previous_failed})
    for leftover in corpus.glob(".*.partial"):
        shutil.rmtree(leftover, ignore_errors=True)

    existing = set(p.name for p in corpus.iterdir() if p.is_dir())
    for sid in sorted(existing):
        _add_agnostic(corpus / sid, sid)
    todo = [i for i in range(n) if sample_id(i) not in existing]
    reused = n - len(todo)
    failed: dict[str, str] = {}
    jobs = max(1, jobs or os.cpu_count() or 1)
    tasks = [(i, seed, str(corpus), settings.sample_rate) for i in todo]
    bar = tqdm(total=len(tasks), desc=f"corpus {out.name}", unit="pair", disable=not progress or not tasks)
    try:
        if jobs == 1:
            _worker_init(settings.sample_rate, settings.soundfont)
            results = map(_build_one, tasks)
            for sid, reason in results:
                if reason:
                    failed[sid] = reason
                bar.update()
        else:
            with ProcessPoolExecutor(jobs, mp_context=SPAWN, initializer=_worker_init,
                                     initargs=(settings.sample_rate, settings.soundfont)) as pool:
                for sid, reason in pool.map(_build_one, tasks, chunksize=4):
                    if reason:
                        failed[sid] = reason
                    bar.update()
    finally:
        bar.close()
    built = len(todo) - len(failed)
    all_failed = {k: v for k, v in {**previous_failed, **failed}.items() if not (corpus / k).is_dir()}
    io.write_json(manifest_path, {"kind": "mtlnb synthetic Camera-PrIMuS", "settings": asdict(settings),
                                  "n_requested": n, "complete": not all_failed, "failed": all_failed})
    return BuildReport(out, n, built, reused, failed)


# --- audio for a real archive -------------------------------------------------------------------------------------


def _render_one(args: tuple[str, str, int]) -> tuple[str, str | None]:
    from mtlnb.camera_primus.notation import semantic

    corpus_root, sid, sample_rate = args
    paths = primus.PrimusCorpus(corpus_root).paths(sid)
    try:
        midi = semantic.semantic_to_midi(semantic.read_semantic(paths.semantic))
        audio = _renderer.render(midi)
        with io.atomic_path(paths.audio) as tmp:
            sf.write(tmp, audio, sample_rate, subtype="PCM_16")
        return sid, None
    except (ValueError, OSError) as e:
        return sid, str(e)


def render_audio(corpus_root: str | os.PathLike, ids: list[str] | None = None, jobs: int | None = None,
                 soundfont: str | os.PathLike | None = None, progress: bool = True) -> dict[str, str]:
    """Render ``<id>.wav`` from ``<id>.semantic`` for samples that lack it: the baseline's adaptation of the real
    Camera-PrIMuS archive (semantic → MIDI by the PrIMuS converter's rules → FluidSynth at 22,050 Hz).

    Returns the samples that could not be rendered, id → reason (they are also left out later by the feature
    cache, which reports them again).
    """
    corpus = primus.PrimusCorpus(corpus_root)
    wanted = ids if ids is not None else corpus.ids()
    todo = [(str(corpus.root), sid, SAMPLE_RATE) for sid in wanted if not corpus.paths(sid).audio.exists()]
    settings = resolve_settings(0, soundfont)
    failed: dict[str, str] = {}
    bar = tqdm(total=len(todo), desc="audio", unit="file", disable=not progress or not todo)
    jobs = max(1, jobs or os.cpu_count() or 1)
    with ProcessPoolExecutor(jobs, mp_context=SPAWN, initializer=_worker_init,
                             initargs=(SAMPLE_RATE, settings.soundfont)) as pool:
        for sid, reason in pool.map(_render_one, todo, chunksize=8):
            if reason:
                failed[sid] = reason
            bar.update()
    bar.close()
    return failed
