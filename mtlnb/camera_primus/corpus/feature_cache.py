"""A feature cache per corpus and settings: image and CQT features computed once, checked on every open.

Layout::

    <cache>/manifest.json       settings, corpus root (absolute and relative to the cache), source fingerprints,
                                left-out samples
    <cache>/image/<id>.npy      uint8 (64, W)   image features × 255, rounded
    <cache>/cqt/<id>.npy        uint8 (120, frames)  the CQT image before its resize to height 256, × 255

Storage: both features lie in [0, 1]; 8-bit quantisation (error ≤ 1/510, and the bilinear resize on reading keeps
that bound) and storing the CQT before its 256/120 up-scaling keep a pair near 110 kB (about 2.5 GB for the 22,285
pairs of the paper-size corpus), so the whole cache even fits in 8 GB of RAM; the datasets read it lazily anyway.
``dtype="float16"`` doubles the size for users who want it.

A cache is valid only for the settings and the source files it was built from.  Each sample's fingerprint is the
size and modification time of its ``_distorted.jpg``, ``.wav`` and ``.semantic`` files; :func:`open_cache` raises
:class:`StaleCacheError` naming the samples whose sources changed, and :func:`build_cache` recomputes exactly those.
A sample that is left out loses the features an earlier build cached for it (they describe sources that are gone or
broken), so the cache's files and size are those of its cached samples.  Audio at another rate than the settings'
is resampled, and :func:`build_cache` warns naming those samples.  One build at a time per cache folder; its
workers die with it (:mod:`mtlnb.core.parallel`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from mtlnb.camera_primus.corpus import features, primus
from mtlnb.core import io, parallel

MANIFEST = "manifest.json"
FEATURE_KINDS = ("image", "cqt")  # one sub-folder of .npy files each
CACHE_VERSION = 2  # bump when the feature code changes what it computes


class StaleCacheError(RuntimeError):
    """The cache does not match its corpus or settings."""


@dataclass(frozen=True)
class FeatureSettings:
    image_height: int = features.IMAGE_HEIGHT
    cqt_height: int = features.CQT_HEIGHT
    sample_rate: int = features.CQT_SR
    dtype: str = "uint8"  # "uint8" (×255) or "float16"
    version: int = CACHE_VERSION


def _fingerprint(paths: primus.SamplePaths) -> list[list[int]]:
    out = []
    for p in (paths.distorted, paths.audio, paths.semantic):
        st = p.stat()
        out.append([st.st_size, st.st_mtime_ns])
    return out


def _encode(x: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "uint8":
        return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
    if dtype == "float16":
        return x.astype(np.float16)
    raise ValueError(f"unknown cache dtype {dtype!r} (uint8 or float16)")


def decode(x: np.ndarray) -> np.ndarray:
    """Stored features → float32 in [0, 1]."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    return x.astype(np.float32)


def compute_sample(paths: primus.SamplePaths, settings: FeatureSettings,
                   notes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Image features (64, W) and the CQT image before its resize (120, frames) of one sample, validated.

    Raises ``ValueError`` (with the file name) for a missing or unreadable file, an invalid or empty ``.semantic``,
    or silent audio; the caller leaves such a sample out and reports it.  What was adapted on the way (audio
    resampled from another rate) is appended to ``notes``.
    """
    from mtlnb.camera_primus.notation.semantic import read_semantic

    for p in (paths.distorted, paths.audio, paths.semantic):
        if not p.is_file():
            raise ValueError(f"{p.name}: file missing")
    read_semantic(paths.semantic)  # validates the label now rather than in the middle of training
    image = features.image_features(paths.distorted, settings.image_height)
    try:
        audio, sr = sf.read(paths.audio, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise ValueError(f"{paths.audio.name}: unreadable audio ({e})") from None
    audio = audio.mean(axis=1)
    if sr != settings.sample_rate:
        import librosa

        if notes is not None:
            notes.append(f"{paths.audio.name}: resampled from {sr} Hz to {settings.sample_rate} Hz")
        audio = librosa.resample(audio, orig_sr=sr, target_sr=settings.sample_rate)
    try:
        cqt = features.cqt_scaled(audio, settings.sample_rate)
    except ValueError as e:
        raise ValueError(f"{paths.audio.name}: {e}") from None
    return image, cqt


def _compute_and_store(args) -> tuple[str, list | None, str | None, list[str]]:
    corpus_root, cache_dir, sid, settings_dict = args
    settings = FeatureSettings(**settings_dict)
    paths = primus.PrimusCorpus(corpus_root).paths(sid)
    notes: list[str] = []
    try:
        if not paths.folder.is_dir():
            raise ValueError("sample folder missing")
        image, cqt = compute_sample(paths, settings, notes)  # checks the files exist before they are fingerprinted
        fp = _fingerprint(paths)
    except (ValueError, OSError) as e:
        return sid, None, str(e), notes
    for kind, x in zip(FEATURE_KINDS, (image, cqt)):
        with io.atomic_path(Path(cache_dir) / kind / f"{sid}.npy") as tmp:
            np.save(tmp, _encode(x, settings.dtype))
    return sid, fp, None, notes


def _forget(cache_dir: Path, sid: str) -> None:
    """Delete a left-out sample's features of an earlier build."""
    for kind in FEATURE_KINDS:
        (cache_dir / kind / f"{sid}.npy").unlink(missing_ok=True)


@dataclass
class FeatureCache:
    """An opened, validated feature cache."""

    root: Path
    corpus_root: Path
    settings: FeatureSettings
    ids: list[str]  # samples with features, sorted
    left_out: dict[str, str]  # id -> reason

    def image(self, sid: str) -> np.ndarray:
        """float32 (64, W) image features of ``sid``."""
        return decode(np.load(self.root / "image" / f"{sid}.npy"))

    def cqt(self, sid: str) -> np.ndarray:
        """float32 (256, W) CQT features of ``sid`` (resized from the stored (120, frames) image)."""
        return features.resize_cqt(decode(np.load(self.root / "cqt" / f"{sid}.npy")), self.settings.cqt_height)

    def widths(self, kind: str) -> dict[str, int]:
        """Feature widths (columns of ``image`` or ``cqt``) per id, from the .npy headers (memory-mapped)."""
        out = {}
        for sid in self.ids:
            shape = np.load(self.root / kind / f"{sid}.npy", mmap_mode="r").shape
            out[sid] = shape[1] if kind == "image" else int(self.settings.cqt_height * shape[1] / shape[0])
        return out

    def nbytes(self) -> int:
        """Bytes on disk of the features of :attr:`ids`."""
        return sum((self.root / kind / f"{sid}.npy").stat().st_size for kind in FEATURE_KINDS for sid in self.ids)


def _corpus_candidates(cache_dir: Path, manifest: dict) -> list[Path]:
    """Where the corpus of a manifest may be: relative to the cache (still right after the data folder moved
    together with its caches), then the absolute path it was built from (still right after the cache alone was
    copied elsewhere).  The per-sample fingerprints decide whether the sources are really the same."""
    out = []
    if "corpus_root_relative" in manifest:
        out.append((Path(cache_dir) / manifest["corpus_root_relative"]).resolve())
    out.append(Path(manifest["corpus_root"]).resolve())
    return out


def _corpus_of(cache_dir: Path, manifest: dict) -> Path:
    """The corpus of a manifest: the first candidate that holds a ``Corpus/`` folder (else the absolute one)."""
    candidates = _corpus_candidates(cache_dir, manifest)
    return next((c for c in candidates if (c / "Corpus").is_dir()), candidates[-1])


def default_cache_dir(corpus_root: str | os.PathLike, settings: FeatureSettings = FeatureSettings()) -> Path:
    """``<corpus root>/features-<settings hash>``: one cache per corpus and settings."""
    return Path(corpus_root) / f"features-{io.sha256_json(asdict(settings))[:10]}"


def _recorded_fingerprints(cache_dir: Path, corpus: primus.PrimusCorpus, settings: FeatureSettings) -> dict:
    """The fingerprints of an earlier build in ``cache_dir`` (empty if none); :class:`StaleCacheError` if it was of
    other settings or another corpus."""
    if not (cache_dir / MANIFEST).exists():
        return {}
    old = io.read_json(cache_dir / MANIFEST)
    if old["settings"] == asdict(settings) and corpus.root.resolve() in _corpus_candidates(cache_dir, old):
        return old["fingerprints"]
    raise StaleCacheError(f"{cache_dir} holds features of other settings or another corpus; "
                          "delete it or choose another cache folder")


def _compute_missing(corpus: primus.PrimusCorpus, cache_dir: Path, settings: FeatureSettings, todo: list[str],
                     fingerprints: dict, jobs: int | None, progress: bool) -> tuple[dict, dict]:
    """Compute and store the features of ``todo``, updating ``fingerprints`` in place.

    Returns the left-out ids with their reasons, and the ids whose audio was resampled with what was done.
    """
    left_out: dict[str, str] = {}
    resampled: dict[str, list[str]] = {}
    args = [(str(corpus.root), str(cache_dir), sid, asdict(settings)) for sid in todo]
    with tqdm(total=len(args), desc="features", unit="pair", disable=not progress or not args) as bar, \
            parallel.imap(_compute_and_store, args, jobs, chunksize=8, folder=cache_dir) as results:
        for sid, fp, reason, notes in results:
            if reason:
                left_out[sid] = reason
                fingerprints.pop(sid, None)
                _forget(cache_dir, sid)
            else:
                fingerprints[sid] = fp
            if notes:
                resampled[sid] = notes
            bar.update()
    return left_out, resampled


def build_cache(corpus_root: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                settings: FeatureSettings = FeatureSettings(), ids: list[str] | None = None,
                jobs: int | None = None, progress: bool = True, wait: bool = False) -> FeatureCache:
    """Compute the features of every sample of a corpus (or of ``ids``) that is missing or stale.

    Samples that cannot be read are left out (and lose features an earlier build cached for them), listed with
    their reasons in the manifest and in the returned cache's ``left_out``; the rest are cached.  Safe to interrupt:
    features are written atomically and the manifest is rewritten at the end, so a rerun recomputes only what the
    interrupted one did not record.  Another build running on ``cache_dir`` raises
    :class:`mtlnb.core.parallel.FolderBusyError`, or with ``wait`` is waited for.  A cache that holds every
    wanted sample, up to date, is only checked, without taking the folder's lock (so that concurrent trainings can
    all check it at once); samples left out earlier are retried under the lock.
    """
    corpus = primus.PrimusCorpus(corpus_root)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir(corpus.root, settings)
    wanted = sorted(set(ids)) if ids is not None else corpus.ids()
    current = _up_to_date(cache_dir, corpus, settings, wanted)
    if current is not None:
        return current
    with parallel.build_lock(cache_dir, writes_in=(".",) + FEATURE_KINDS, wait=wait):
        fingerprints = _recorded_fingerprints(cache_dir, corpus, settings)
        todo = [sid for sid in wanted if sid not in fingerprints]
        todo += io.changed_since({sid: fingerprints[sid] for sid in wanted if sid in fingerprints},
                                 lambda sid: _fingerprint(corpus.paths(sid)))
        left_out, resampled = _compute_missing(corpus, cache_dir, settings, sorted(todo), fingerprints, jobs,
                                               progress)
        # Ids of earlier builds that are no longer wanted stay cached: they cost nothing and keep the cache reusable.
        io.write_json(cache_dir / MANIFEST, {
            "settings": asdict(settings), "corpus_root": str(corpus.root.resolve()),
            "corpus_root_relative": os.path.relpath(corpus.root.resolve(), cache_dir.resolve()),
            "fingerprints": fingerprints, "left_out": left_out})
    if resampled:
        warnings.warn(f"{cache_dir}: the audio of {len(resampled)} samples is not at {settings.sample_rate} Hz and "
                      f"was resampled: " + "; ".join(f"{sid} ({n})" for sid, notes in sorted(resampled.items())
                                                   for n in notes), stacklevel=2)
    return open_cache(cache_dir, ids=wanted)


def _up_to_date(cache_dir: Path, corpus: primus.PrimusCorpus, settings: FeatureSettings, wanted: list[str]
                ) -> FeatureCache | None:
    """The cache in ``cache_dir`` if it is of ``corpus`` and ``settings`` and holds features of every id of
    ``wanted``, with sources unchanged since; else None.  Read-only: the manifest is replaced atomically, never
    seen half-written."""
    try:
        cache = open_cache(cache_dir, ids=wanted)
    except StaleCacheError:
        return None
    same = cache.settings == settings and cache.corpus_root.resolve() == corpus.root.resolve()
    return cache if same and not cache.left_out else None


def open_cache(cache_dir: str | os.PathLike, ids: list[str] | None = None, check: bool = True) -> FeatureCache:
    """Open a cache built by :func:`build_cache`.

    Parameters
    ----------
    ids : list of str, optional
        Restrict to these ids; an id that is neither cached nor recorded as left out raises
        :class:`StaleCacheError` (the cache was built for another selection).
    check : bool
        Verify every sample's source fingerprint (one ``stat`` per file) and raise :class:`StaleCacheError`
        naming the changed samples.
    """
    cache_dir = Path(cache_dir)
    manifest_path = cache_dir / MANIFEST
    if not manifest_path.exists():
        raise StaleCacheError(f"{cache_dir}: no feature cache here (build it with `python -m mtlnb features`)")
    m = io.read_json(manifest_path)
    settings = FeatureSettings(**m["settings"])
    if settings.version != CACHE_VERSION:
        raise StaleCacheError(f"{cache_dir} was built by feature code version {settings.version}, "
                              f"this is {CACHE_VERSION}: rebuild it")
    corpus = primus.PrimusCorpus(_corpus_of(cache_dir, m))
    fingerprints = m["fingerprints"]
    left_out = dict(m.get("left_out", {}))
    wanted = sorted(set(ids)) if ids is not None else sorted(fingerprints)
    unknown = [s for s in wanted if s not in fingerprints and s not in left_out]
    if unknown:
        raise StaleCacheError(f"{cache_dir}: {len(unknown)} requested ids were never cached, e.g. {unknown[:3]}")
    if check:
        stale = io.changed_since({sid: fingerprints[sid] for sid in wanted if sid not in left_out},
                                 lambda sid: _fingerprint(corpus.paths(sid)))
        if stale:
            raise StaleCacheError(f"{cache_dir}: the sources of {len(stale)} samples changed since they were cached "
                                  f"(e.g. {stale[:3]}); rebuild with build_cache")
    cached = [s for s in wanted if s in fingerprints]
    return FeatureCache(cache_dir, corpus.root, settings, cached, {s: left_out[s] for s in wanted if s in left_out})
