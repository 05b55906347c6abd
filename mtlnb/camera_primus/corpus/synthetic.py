"""Build a synthetic corpus in Camera-PrIMuS's own layout.

Per sample (seeded by the corpus seed and the sample's index, so samples are independent of each other, of the
number of worker processes and of the order they run in)::

    incipit generator (cleansed: no multi-rests) → <id>.semantic
        → Plaine & Easie → regular_pae.pae → Verovio → <id>.mei, <id>.png
        → camera distortions (twelve steps, torn openings; ``camera``, default ``swept``) → <id>_distorted.jpg
        → semantic → MIDI (PrIMuS converter rules) → FluidSynth 22,050 Hz → <id>.wav

Robustness:

- A sample's files are written into a hidden ``Corpus/.<id>.partial/`` folder, the folder is renamed to
  ``Corpus/<id>/`` when all of them exist, and then, last, its completion marker ``.done/<id>.json`` (beside
  ``Corpus/``, so that ``Corpus/`` holds exactly the archive's layout) records the size of each of its seven files.
  A sample is done only when its marker's files are all there with their recorded sizes; any other sample folder
  (a deleted or truncated file, an empty folder) is deleted and built again, and the summary says why.
- A sample folder without a marker (a corpus built before markers existed, or a build killed between the rename
  and the marker) is checked once: every file present, non-empty and whole (a JPEG's end-of-image marker, a PNG's
  ``IEND`` chunk, a WAV with frames); if so its marker is written, otherwise it is rebuilt.  Readers never look at
  markers: the real archive, read-only and without them, reads as before.
- ``manifest.json`` describes what is on disk after every build: the settings, ``n_requested``, ``n_ready`` and the
  left-out samples with their reasons.  Samples beyond ``n`` (a smaller ``--n`` than the corpus holds, or foreign
  folders in ``Corpus/``) are an error naming them, unless ``trim=True`` (``--trim``), which deletes them and
  reports them.  Settings that differ from the manifest's are an error only while samples of the old settings exist.
  Manifests written before the camera was a setting name none: their corpora were built with ``fitted``.
- One build at a time per folder, its workers die with it (:mod:`mtlnb.core.parallel`), and a build that ends with
  no sample on disk (a soundfont FluidSynth cannot load, say) leaves neither a manifest nor an empty ``Corpus/``.
- A sample that fails (e.g. Verovio rejects it) is reported with its id and reason in ``manifest.json`` and in the
  summary, never silently dropped.
"""

from __future__ import annotations

import os
import shutil
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from mtlnb.core import io, parallel
from mtlnb.camera_primus.corpus import distortion, primus

if TYPE_CHECKING:  # engraving imports Verovio: loaded where a sample is built, not on import
    from mtlnb.camera_primus.corpus import engraving

MANIFEST = "manifest.json"
# Manifests written before the camera was a setting were built with the fitted camera (then the only default).
LEGACY_CAMERA = "fitted"
DONE = ".done"  # <out>/.done/<id>.json: a sample's completion marker, written last
# The files every sample has: the real archive's six, plus the rendered audio.
SAMPLE_FILES = (primus.SEMANTIC, primus.DISTORTED, primus.CLEAN, primus.MEI, primus.AGNOSTIC, primus.PAE,
                primus.AUDIO)
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
    camera: str = distortion.DEFAULT_CAMERA  # the distortion configuration's name (distortion.CONFIGS)
    versions: dict = field(default_factory=dict)  # verovio / fluidsynth / mtlnb versions


@dataclass
class BuildReport:
    """What a build did: counts and the left-out samples with their reasons."""

    root: Path
    requested: int
    built: int  # finished in this call
    reused: int  # already present from an earlier (possibly interrupted) call
    failed: dict[str, str]  # id -> reason
    rebuilt: dict[str, str] = field(default_factory=dict)  # id -> why the folder on disk was not a whole sample
    trimmed: list[str] = field(default_factory=list)  # ids beyond n that were deleted (trim=True)

    def summary(self) -> str:
        s = (f"{self.root}: {self.built + self.reused}/{self.requested} samples ready "
             f"({self.built} built now, {self.reused} already there)")
        if self.rebuilt:
            s += (f"; {len(self.rebuilt)} incomplete on disk, built again: "
                  + "; ".join(f"{k}: {v}" for k, v in sorted(self.rebuilt.items())))
        if self.trimmed:
            s += f"; {len(self.trimmed)} beyond n deleted: {', '.join(self.trimmed)}"
        if self.failed:
            s += f"; {len(self.failed)} left out: " + "; ".join(f"{k}: {v}" for k, v in sorted(self.failed.items()))
        return s


def sample_id(index: int) -> str:
    return ID_FORMAT.format(index=index)


def _versions() -> dict:
    import verovio

    import mtlnb

    return {"mtlnb": mtlnb.__version__, "verovio": verovio.toolkit().getVersion()}


def resolve_settings(seed: int, soundfont: str | os.PathLike | None = None,
                     camera: str = distortion.DEFAULT_CAMERA) -> BuildSettings:
    from mtlnb.core.synthesis import find_soundfont

    distortion.config_named(camera)  # an unknown name fails here, before anything is written
    sf_path = find_soundfont(soundfont)
    return BuildSettings(seed=seed, soundfont=str(sf_path), soundfont_sha256=io.sha256_file(sf_path),
                         camera=camera, versions=_versions())


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


def sample_rngs(index: int, seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Sample ``index``'s three random generators in a corpus of ``seed``: incipit, engraving, camera."""
    seq = np.random.SeedSequence([seed, index])
    gen_rng, engrave_rng, distort_rng = (np.random.default_rng(s) for s in seq.spawn(3))
    return gen_rng, engrave_rng, distort_rng


def render_images(tokens: list[str], engrave_rng: np.random.Generator, distort_rng: np.random.Generator,
                  camera=None) -> tuple[str, engraving.Engraving, np.ndarray]:
    """The score images of ``tokens``: semantic → Plaine & Easie (PrIMuS spelling, beamed with
    :data:`BEAM_PROBABILITY`) → Verovio → camera (a :class:`~distortion.DistortionConfig`; default
    :data:`~distortion.MEASURED_CAMERA_PRIMUS`, the one that follows the real archive).  Returns
    ``(pae, engraved, distorted)``; the distorted image is uint8 ``(H, W)``."""
    from mtlnb.camera_primus.notation import semantic
    from mtlnb.camera_primus.corpus import distortion, engraving

    pae = semantic.semantic_to_pae(tokens, carry=CARRY_ACCIDENTALS, beams=engrave_rng.random() < BEAM_PROBABILITY)
    engraved = engraving.engrave(pae)
    camera = camera if camera is not None else distortion.MEASURED_CAMERA_PRIMUS
    return pae, engraved, distortion.distort(engraved.image, distort_rng, camera)


def make_sample(index: int, seed: int, camera: str = distortion.DEFAULT_CAMERA) -> dict:
    """Generate one sample in memory: tokens, PAE, MEI, clean PNG, distorted image (``camera``: a
    :data:`~distortion.CONFIGS` name), audio.

    Returns a dict of file name → bytes or arrays, ready for :func:`write_sample`.
    """
    from mtlnb.camera_primus.notation import agnostic, semantic

    gen_rng, engrave_rng, distort_rng = sample_rngs(index, seed)
    tokens = cleansed_incipit(gen_rng)
    pae, engraved, distorted = render_images(tokens, engrave_rng, distort_rng, distortion.config_named(camera))
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
    _write_wav(paths.audio, sample["audio"], sample_rate)


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit WAV, encoded in memory and written by Python: libsndfile reports a full disk as "System error"."""
    buf = BytesIO()
    sf.write(buf, audio, sample_rate, subtype="PCM_16", format="WAV")
    io.write_bytes(path, buf.getvalue())


def _add_agnostic(folder: Path, sid: str) -> None:
    """Write ``<id>.agnostic`` for a sample built before mtlnb wrote it (it follows from the .semantic and PAE)."""
    from mtlnb.camera_primus.notation import agnostic, semantic

    paths = primus.SamplePaths(sid, folder)
    if paths.agnostic.exists() or not paths.semantic.exists() or not paths.pae.exists():
        return
    tokens = semantic.read_semantic(paths.semantic)
    symbols = agnostic.semantic_to_agnostic(tokens, paths.pae.read_text().strip())
    io.write_text(paths.agnostic, agnostic.format_agnostic(symbols))


def _build_one(args: tuple[int, int, str, int, str]) -> tuple[str, str | None]:
    index, seed, corpus, sample_rate, camera = args
    sid = sample_id(index)
    final = Path(corpus) / sid
    partial = Path(corpus) / f".{sid}.partial"
    try:
        sample = make_sample(index, seed, camera)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        write_sample(partial, sid, sample, sample_rate)
        os.replace(partial, final)  # the sample appears whole or not at all
        write_marker(Path(corpus).parent, sid)
        return sid, None
    except Exception as e:  # reported per sample, counted in the summary
        shutil.rmtree(partial, ignore_errors=True)
        reason = f"{type(e).__name__}: {e}".strip()
        if not str(e):
            reason += " " + traceback.format_exc(limit=2).splitlines()[-1]
        return sid, reason


# --- completion markers -------------------------------------------------------------------------------------------


def _marker(out: Path, sid: str) -> Path:
    return out / DONE / f"{sid}.json"


def write_marker(out: str | os.PathLike, sid: str) -> None:
    """Record ``Corpus/<id>/``'s files and sizes in bytes as the sample's completion marker."""
    folder = Path(out) / "Corpus" / sid
    io.write_json(_marker(Path(out), sid),
                  {pattern.format(id=sid): (folder / pattern.format(id=sid)).stat().st_size
                   for pattern in SAMPLE_FILES})


_TRAILERS = {primus.DISTORTED: b"\xff\xd9", primus.CLEAN: b"IEND\xaeB`\x82"}  # JPEG end of image; PNG IEND chunk


def check_unmarked(folder: Path, sid: str) -> str | None:
    """Why a sample folder without a marker is not a whole sample (None if it is): a file missing or empty, an
    image without its end, a WAV shorter than its RIFF header says or without frames."""
    for pattern in SAMPLE_FILES:
        p = folder / pattern.format(id=sid)
        if not p.is_file():
            return f"{p.name} missing"
        size = p.stat().st_size
        if size == 0:
            return f"{p.name} empty"
        trailer = _TRAILERS.get(pattern)
        if trailer is not None:
            with open(p, "rb") as f:
                f.seek(max(0, size - len(trailer)))
                if f.read() != trailer:
                    return f"{p.name} truncated"
    wav = folder / primus.AUDIO.format(id=sid)
    with open(wav, "rb") as f:
        head = f.read(8)
    if head[:4] != b"RIFF" or int.from_bytes(head[4:8], "little") + 8 != wav.stat().st_size:
        return f"{wav.name} truncated"
    try:
        frames = sf.info(str(wav)).frames
    except (RuntimeError, sf.LibsndfileError):
        frames = 0
    return None if frames > 0 else f"{wav.name} unreadable or without audio"


def check_sample(out: str | os.PathLike, sid: str) -> str | None:
    """Why ``Corpus/<id>/`` is not a done sample (None if it is).

    With a marker: every file it lists must exist with its recorded size.  Without one: :func:`check_unmarked`, and
    if the folder passes, its marker is written (so each folder is checked this way once).
    """
    out = Path(out)
    folder = out / "Corpus" / sid
    if not folder.is_dir():
        return "folder missing"
    marker = _marker(out, sid)
    if not marker.is_file():
        reason = check_unmarked(folder, sid)
        if reason is None:
            write_marker(out, sid)
        return reason
    try:
        sizes = io.read_json(marker)
    except ValueError:
        return f"unreadable marker {marker}"
    for name, size in sorted(sizes.items()):
        p = folder / name
        if not p.is_file():
            return f"{name} missing"
        if p.stat().st_size != size:
            return f"{name} has {p.stat().st_size} bytes, {size} were written"
    return None


# --- the corpus ---------------------------------------------------------------------------------------------------


def _sample_folders(corpus: Path) -> set[str]:
    return {p.name for p in corpus.iterdir() if p.is_dir() and not p.name.startswith(".")} if corpus.is_dir() \
        else set()


def corpus_camera(out: str | os.PathLike) -> str:
    """The camera (a :data:`~distortion.CONFIGS` name) the synthetic corpus at ``out`` was built with: its manifest's
    (``fitted`` for a manifest from before the camera was recorded), or the default where ``out`` has no manifest
    (a real archive, or a corpus not built yet)."""
    manifest_path = Path(out) / MANIFEST
    if not manifest_path.exists():
        return distortion.DEFAULT_CAMERA
    return _recorded_settings(io.read_json(manifest_path))["camera"]


def _recorded_settings(manifest: dict) -> dict:
    """A manifest's settings, with the camera of its day where it predates the camera setting."""
    return {"camera": LEGACY_CAMERA, **manifest["settings"]}


def _check_settings(out: Path, settings: BuildSettings) -> dict[str, str]:
    """The previous build's left-out samples; ``ValueError`` if its settings differ and its samples are still there
    (mixing samples of two settings would silently change the data).  Without samples the new settings win."""
    manifest_path = out / MANIFEST
    if not manifest_path.exists():
        return {}
    manifest = io.read_json(manifest_path)
    recorded = _recorded_settings(manifest)
    if recorded != asdict(settings):
        if not _sample_folders(out / "Corpus"):
            return {}
        diff = {k: (recorded.get(k), v) for k, v in asdict(settings).items() if recorded.get(k) != v}
        old_camera = recorded["camera"]
        hint = "" if "camera" not in diff else (
            f" (its camera is {old_camera!r}; the default is now {distortion.DEFAULT_CAMERA!r}: a corpus of the old "
            f"camera is extended by `python -m mtlnb corpus --camera {old_camera}`)")
        raise ValueError(f"{out} was built with other settings (old, new): {diff}; "
                         f"choose another folder or delete this one{hint}")
    return manifest.get("failed", {})


def _remove_sample(out: Path, sid: str) -> None:
    shutil.rmtree(out / "Corpus" / sid)
    _marker(out, sid).unlink(missing_ok=True)


def _settle_existing(out: Path, n: int, trim: bool) -> tuple[set[str], dict[str, str], list[str]]:
    """Sort what a corpus folder holds before a build: leftovers of interrupted builds are deleted, samples beyond
    ``n`` refused (or deleted with ``trim``), incomplete samples deleted for rebuilding.

    Returns the done ids, the rebuilt ids with reasons, the trimmed ids.
    """
    corpus = out / "Corpus"
    for leftover in corpus.glob(".*.partial"):
        shutil.rmtree(leftover, ignore_errors=True)
    present = _sample_folders(corpus)
    extra = sorted(present - {sample_id(i) for i in range(n)})
    if extra and not trim:
        ours = [sid for sid in extra if sid == sample_id(int(sid[3:]) if sid[3:].isdigit() else -1)]
        keep = f"ask for n = {max(int(sid[3:]) for sid in ours) + 1} or " if len(ours) == len(extra) else ""
        raise ValueError(f"{corpus} holds {len(extra)} sample folders beyond n={n} ({', '.join(extra[:5])}"
                         f"{', ...' if len(extra) > 5 else ''}); {keep}pass --trim (trim=True) to delete them")
    for sid in extra:
        _remove_sample(out, sid)
    done: set[str] = set()
    rebuilt: dict[str, str] = {}
    for sid in sorted(present - set(extra)):
        _add_agnostic(corpus / sid, sid)
        reason = check_sample(out, sid)
        if reason is None:
            done.add(sid)
        else:
            rebuilt[sid] = reason
            _remove_sample(out, sid)
    if (out / DONE).is_dir():  # markers of folders that are gone
        for marker in (out / DONE).glob("*.json"):
            if marker.stem not in done:
                marker.unlink()
    return done, rebuilt, extra


def _write_manifest(out: Path, settings: BuildSettings, n: int, n_ready: int, failed: dict[str, str]) -> None:
    """The manifest of ``n`` requested samples of which ``n_ready`` are done (complete only if all are)."""
    io.write_json(out / MANIFEST, {"kind": "mtlnb synthetic Camera-PrIMuS", "settings": asdict(settings),
                                   "n_requested": n, "n_ready": n_ready, "complete": n_ready == n and not failed,
                                   "failed": failed})


def _forget_if_empty(out: Path) -> None:
    """After a build that left no sample on disk: no manifest (its settings bind nothing), no empty folders."""
    if _sample_folders(out / "Corpus"):
        return
    (out / MANIFEST).unlink(missing_ok=True)
    for folder in (out / DONE, out / "Corpus"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def build_corpus(out: str | os.PathLike, n: int, seed: int = 42, jobs: int | None = None,
                 soundfont: str | os.PathLike | None = None, progress: bool = True,
                 trim: bool = False, camera: str = distortion.DEFAULT_CAMERA) -> BuildReport:
    """Build (or finish building) a synthetic corpus of ``n`` samples under ``out/Corpus/``.

    Parameters
    ----------
    out : path
        Corpus root; ``out/manifest.json`` records the settings.  An existing root with samples must have been
        built with the same settings (seed, soundfont and its checksum, sample rate, versions): otherwise
        ``ValueError``, since mixing samples from two settings would silently change the data.  Another build
        running in ``out`` raises :class:`mtlnb.core.parallel.FolderBusyError`.
    n : int
        Number of samples wanted; ids ``syn000000`` … are built if missing or incomplete.  Growing ``n`` later
        extends the corpus with the same first samples; a smaller ``n`` than the corpus holds is a ``ValueError``
        unless ``trim``.
    seed : int
        Corpus seed.
    jobs : int, optional
        Worker processes (default: all cores).
    soundfont : path, optional
        See :func:`mtlnb.core.synthesis.find_soundfont`.
    trim : bool
        Delete samples beyond ``n`` (reported in :attr:`BuildReport.trimmed`) instead of refusing.
    camera : str
        The camera distortion's configuration (:data:`~mtlnb.camera_primus.corpus.distortion.CONFIGS`; default
        ``"swept"``, the one that follows the real archive); recorded in the manifest like the other settings.
    """
    if n < 1:
        raise ValueError(f"build_corpus: n must be positive, got {n}")
    out = Path(out)
    corpus = out / "Corpus"
    settings = resolve_settings(seed, soundfont, camera)  # before anything is created: a bad soundfont leaves nothing
    with parallel.build_lock(out, writes_in=(".", DONE, "Corpus/*")):
        previous_failed = _check_settings(out, settings)
        wanted = [sample_id(i) for i in range(n)]
        try:
            done, rebuilt, trimmed = _settle_existing(out, n, trim)
            corpus.mkdir(parents=True, exist_ok=True)
            _write_manifest(out, settings, n, len(done), {k: v for k, v in previous_failed.items()
                                                          if k in wanted and k not in done})
            todo = [i for i, sid in enumerate(wanted) if sid not in done]
            failed = _build_missing(out, todo, seed, settings, jobs, progress)
        except BaseException:
            _forget_if_empty(out)
            raise
        ready = set(wanted) & _sample_folders(corpus)
        _write_manifest(out, settings, n, len(ready), {k: failed.get(k) or previous_failed.get(k, "not built")
                                                       for k in wanted if k not in ready})
        _forget_if_empty(out)
    return BuildReport(out, n, len(todo) - len(failed), len(done), failed, rebuilt, trimmed)


def _build_missing(out: Path, todo: list[int], seed: int, settings: BuildSettings, jobs: int | None,
                   progress: bool) -> dict[str, str]:
    """Build samples ``todo`` (indices) into ``out/Corpus``; returns the failed ids with their reasons."""
    failed: dict[str, str] = {}
    tasks = [(i, seed, str(out / "Corpus"), settings.sample_rate, settings.camera) for i in todo]
    with tqdm(total=len(tasks), desc=f"corpus {out.name}", unit="pair", disable=not progress or not tasks) as bar, \
            parallel.imap(_build_one, tasks, jobs, initializer=_worker_init, chunksize=4, folder=out,
                          initargs=(settings.sample_rate, settings.soundfont)) as results:
        for sid, reason in results:
            if reason:
                failed[sid] = reason
            bar.update()
    return failed


# --- audio for a real archive -------------------------------------------------------------------------------------


def _render_one(args: tuple[str, str, int]) -> tuple[str, str | None, list[int]]:
    from mtlnb.camera_primus.notation import semantic

    corpus_root, sid, sample_rate = args
    paths = primus.PrimusCorpus(corpus_root).paths(sid)
    stray_ties: list[int] = []
    try:
        midi = semantic.semantic_to_midi(semantic.read_semantic(paths.semantic), unresolved_ties=stray_ties)
        _write_wav(paths.audio, _renderer.render(midi), sample_rate)
        return sid, None, stray_ties
    except (ValueError, OSError) as e:
        return sid, str(e), stray_ties


def render_audio(corpus_root: str | os.PathLike, ids: list[str] | None = None, jobs: int | None = None,
                 soundfont: str | os.PathLike | None = None, progress: bool = True) -> dict[str, str]:
    """Render ``<id>.wav`` from ``<id>.semantic`` for samples that lack it: the baseline's adaptation of the real
    Camera-PrIMuS archive (semantic → MIDI by the PrIMuS converter's rules → FluidSynth at 22,050 Hz).

    Returns the samples that could not be rendered, id → reason (they are also left out later by the feature
    cache, which reports them again).  Samples with a ``tie`` that joins no note (the real archive has ties
    misplaced by Verovio's PAE import) are rendered as if it were absent, and named in one warning.  Another build
    running in the corpus folder raises :class:`mtlnb.core.parallel.FolderBusyError`.
    """
    corpus = primus.PrimusCorpus(corpus_root)
    wanted = ids if ids is not None else corpus.ids()
    todo = [(str(corpus.root), sid, SAMPLE_RATE) for sid in wanted if not corpus.paths(sid).audio.exists()]
    settings = resolve_settings(0, soundfont)
    failed: dict[str, str] = {}
    stray: dict[str, list[int]] = {}
    if not todo:
        return failed
    with parallel.build_lock(corpus.root, writes_in=(f"{corpus.corpus.name}/*",)), \
            tqdm(total=len(todo), desc="audio", unit="file", disable=not progress) as bar, \
            parallel.imap(_render_one, todo, jobs, initializer=_worker_init, chunksize=8, folder=corpus.root,
                          initargs=(SAMPLE_RATE, settings.soundfont)) as results:
        for sid, reason, ties in results:
            if reason:
                failed[sid] = reason
            if ties:
                stray[sid] = ties
            bar.update()
    if stray:
        warnings.warn(f"{len(stray)} samples have ties that join no note, rendered without them (sample: token "
                      "positions): " + "; ".join(f"{sid}: {ties}" for sid, ties in sorted(stray.items())),
                      stacklevel=2)
    return failed
