"""Cached spectrograms and targets of a MAESTRO-layout dataset, and the 11-frame samples the piano networks train on.

The training loop reads batches through :class:`PianoFrameBatches` (one vectorised read per batch), drawn by
:class:`RandomBatches` (training) or :class:`SequentialBatches` (evaluation).

Layout of a cache (one per dataset and settings)::

    <cache>/manifest.json                  settings, dataset root, per piece: split, frames, source fingerprint
    <cache>/<piece id>/spectrogram.npy     float32 (T, 144)  semi-logarithmic spectrogram (mtlnb.piano.spectrogram)
    <cache>/<piece id>/targets.npy         uint8 (T, 353)    the five targets in integer form (mtlnb.piano.targets),
                                                             side by side: onsets 0:88, frames 88:176,
                                                             offsets 176:264, velocity 264:352, sustain 352

MAESTRO has about 25 million frames: 14 GB of spectrogram and 9 GB of targets (uint8 keeps them at a quarter
of float32 and decodes exactly; one packed file per piece makes a sample's targets one contiguous row and
halves the cost of opening a piece).  Nothing of that size is ever held in memory: files are opened with
``np.load(mmap_mode="r")``, at most ``max_open`` pieces are mapped at a time (a mapping costs address space,
not memory: the kernel pages rows in on demand and drops them under pressure), and the datasets keep only a
per-piece frame count.  A sample reads its 11 spectrogram rows and one target row.

A cache is valid only for its settings and sources: :func:`open_cache` raises :class:`StaleCacheError` if the
spectrogram or target settings differ from the ones asked for, or if a source file changed (its size or
modification time); :func:`build_cache` recomputes exactly the changed pieces and records its progress after every
piece, so an interrupted build resumes.  One build at a time per cache folder; its workers die with it
(:mod:`mtlnb.core.parallel`).

Where the papers are silent: context frames before the first or after the last frame are zeros
(``log10(1 + 0)``, i.e. silence); the network input is ``(11, 144)``, the channel axis is the model's business.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, Sampler, get_worker_info
from tqdm.auto import tqdm

from mtlnb.core import io, parallel
from mtlnb.piano import maestro, spectrogram, targets as piano_targets

MANIFEST = "manifest.json"
CACHE_VERSION = 1  # bump when the spectrogram or target code changes what it computes
CONTEXT = 11  # frames per network input, centred on the target frame (ICASSP19 and the paper)
_CHUNK = 1024  # frames read at once when streaming single samples: amortises the indexing, bounds memory (6 MB)
MAX_OPEN = 2048  # pieces kept mapped per process: all of MAESTRO (1,276), since opening one costs ~0.5 ms


class StaleCacheError(RuntimeError):
    """The cache does not match its dataset or the settings asked for."""


@dataclass(frozen=True)
class PianoCacheSettings:
    """Everything that determines a cache's content."""

    features: spectrogram.SemilogConfig = spectrogram.SEMILOG  # the input spectrogram
    targets: piano_targets.TargetConfig = piano_targets.TARGETS  # frame rate, maximum filter, keys
    sustain_threshold: int = 64  # CC64 value from which the pedal extends notes (madmom / Onsets & Frames)
    version: int = CACHE_VERSION

    def __post_init__(self):
        if abs(self.features.fps - self.targets.fps) > 1e-9:
            raise ValueError(f"PianoCacheSettings: spectrogram ({self.features.fps} fps) and targets "
                             f"({self.targets.fps} fps) must share one frame rate")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PianoCacheSettings":
        return cls(spectrogram.SemilogConfig(**d["features"]), piano_targets.TargetConfig(**d["targets"]),
                   int(d["sustain_threshold"]), int(d["version"]))


SETTINGS = PianoCacheSettings()


def _fingerprint(piece: maestro.Piece) -> list[list[int]]:
    """Size and modification time of the MIDI and audio files: cheap, and changes whenever a file is rewritten."""
    stats = [p.stat() for p in (piece.midi_path, piece.audio_path)]
    return [[st.st_size, st.st_mtime_ns] for st in stats]


def compute_piece(piece: maestro.Piece, settings: PianoCacheSettings = SETTINGS) -> tuple[np.ndarray, dict]:
    """Spectrogram and integer targets of one performance.

    Returns
    -------
    spectrogram : ndarray float32 (T, 144)
    targets : dict of ndarray uint8
        :func:`mtlnb.piano.targets.encode_targets` over the same T frames.
    """
    audio = maestro.load_audio(piece.audio_path, settings.features.sr)
    spec = spectrogram.semilog_spectrogram(audio, settings.features.sr, settings.features)
    notes = maestro.midi_to_notes(piece.midi_path, settings.sustain_threshold)
    targets = piano_targets.encode_targets(notes, maestro.sustain_events(piece.midi_path), len(spec),
                                           settings.targets)
    return spec, targets


def pack_targets(encoded: dict[str, np.ndarray]) -> np.ndarray:
    """The five integer targets side by side: uint8 (T, 4 · 88 + 1) in :data:`~mtlnb.piano.targets.TARGET_NAMES`
    order (the cache's storage form)."""
    return np.ascontiguousarray(np.concatenate([encoded[n] for n in piano_targets.TARGET_NAMES], axis=1),
                                dtype=np.uint8)


def unpack_targets(packed: np.ndarray, n_keys: int = 88) -> dict[str, np.ndarray]:
    """Views of the five targets in packed rows ``(..., 4 · n_keys + 1)``: inverse of :func:`pack_targets`."""
    if packed.shape[-1] != 4 * n_keys + 1:
        raise ValueError(f"unpack_targets: expected {4 * n_keys + 1} columns, got shape {packed.shape}")
    out = {n: packed[..., i * n_keys:(i + 1) * n_keys] for i, n in enumerate(piano_targets.TARGET_NAMES[:4])}
    out["sustain"] = packed[..., 4 * n_keys:]
    return out


def _save(path: Path, array: np.ndarray) -> None:
    with io.atomic_path(path) as tmp:
        np.save(tmp, array)


def _compute_and_store(args) -> tuple[str, dict | None, str | None]:
    piece, cache_dir, settings_dict = args
    settings = PianoCacheSettings.from_dict(settings_dict)
    try:
        fingerprint = _fingerprint(piece)
        spec, targets = compute_piece(piece, settings)
    except (ValueError, OSError) as e:
        return piece.id, None, str(e)
    folder = Path(cache_dir) / piece.id
    _save(folder / "targets.npy", pack_targets(targets))
    _save(folder / "spectrogram.npy", spec)  # last: its presence marks a complete piece
    return piece.id, {"split": piece.split, "n_frames": len(spec), "fingerprint": fingerprint}, None


def default_cache_dir(dataset_root: str | os.PathLike, settings: PianoCacheSettings = SETTINGS) -> Path:
    """``<dataset root>/piano-features-<settings hash>``: one cache per dataset and settings."""
    return Path(dataset_root) / f"piano-features-{io.sha256_json(settings.to_dict())[:10]}"


def _manifest_to_update(cache_dir: Path, settings: PianoCacheSettings, dataset_root: Path) -> dict:
    """The manifest of an earlier build in ``cache_dir`` (a fresh one if none); :class:`StaleCacheError` if it was
    of other settings or another dataset."""
    manifest = {"settings": settings.to_dict(), "dataset_root": str(dataset_root), "pieces": {}, "left_out": {}}
    if not (cache_dir / MANIFEST).exists():
        return manifest
    old = io.read_json(cache_dir / MANIFEST)
    if old["settings"] != manifest["settings"] or old["dataset_root"] != manifest["dataset_root"]:
        raise StaleCacheError(f"{cache_dir} holds a cache of other settings or another dataset; "
                              "delete it or choose another cache folder")
    return old


def build_cache(dataset_root: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                settings: PianoCacheSettings = SETTINGS, split: str | None = None, jobs: int | None = 1,
                progress: bool = True) -> "PianoCache":
    """Compute spectrogram and targets of every piece (or of one split) that is missing or stale.

    Parameters
    ----------
    dataset_root : path
        A MAESTRO-layout folder (real MAESTRO v2/v3 or :func:`mtlnb.piano.performance.generate`'s output).
    cache_dir : path, optional
        Default :func:`default_cache_dir`.  A folder holding a cache of other settings or another dataset raises
        :class:`StaleCacheError`.
    settings : PianoCacheSettings
    split : {"train", "validation", "test"}, optional
        Only this split (the others stay as they are).
    jobs : int, optional
        Worker processes; None = the CPU count.  1 (default) computes in this process.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    PianoCache
        The opened cache, restricted to ``split`` if given.  Pieces that could not be read are left out and
        listed, with the reason, in ``left_out``.
    """
    dataset_root = Path(dataset_root).resolve()
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir(dataset_root, settings)
    wanted = maestro.pieces(dataset_root, split)
    with parallel.build_lock(cache_dir, writes_in=(".", "*")):
        manifest = _manifest_to_update(cache_dir, settings, dataset_root)
        records = manifest["pieces"]

        def fresh(piece: maestro.Piece) -> bool:
            try:
                return (piece.id in records and records[piece.id]["fingerprint"] == _fingerprint(piece)
                        and (cache_dir / piece.id / "spectrogram.npy").is_file())
            except OSError:
                return False

        todo = []
        for piece in wanted:
            if fresh(piece):
                records[piece.id]["split"] = piece.split  # a re-split dataset needs no recomputation
            else:
                todo.append((piece, str(cache_dir), settings.to_dict()))
        with tqdm(total=len(todo), desc="piano features", unit="piece", disable=not progress or not todo) as bar, \
                parallel.imap(_compute_and_store, todo, jobs, folder=cache_dir) as results:
            for pid, record, reason in results:
                if reason is None:
                    records[pid] = record
                    manifest["left_out"].pop(pid, None)
                else:
                    records.pop(pid, None)
                    manifest["left_out"][pid] = reason
                io.write_json(cache_dir / MANIFEST, manifest)  # after every piece: an interrupted build resumes
                bar.update()
        order = {p.id: i for i, p in enumerate(maestro.pieces(dataset_root))}  # the CSV's order, for readers
        manifest["pieces"] = dict(sorted(records.items(), key=lambda item: order.get(item[0], len(order))))
        io.write_json(cache_dir / MANIFEST, manifest)
    return open_cache(cache_dir, split=split, settings=settings)


@dataclass(frozen=True)
class CachedPiece:
    id: str
    split: str
    n_frames: int


@dataclass
class PianoCache:
    """An opened, validated cache; arrays are read on demand as read-only memory maps."""

    root: Path
    dataset_root: Path
    settings: PianoCacheSettings
    pieces: list[CachedPiece]  # in the dataset's CSV order
    left_out: dict[str, str] = field(default_factory=dict)  # piece id -> why it could not be cached

    def select(self, split: str | None = None) -> list[CachedPiece]:
        """The cached pieces of ``split`` (all if None)."""
        if split is not None and split not in maestro.SPLITS:
            raise ValueError(f"PianoCache.select: split must be one of {maestro.SPLITS}, got {split!r}")
        return [p for p in self.pieces if split is None or p.split == split]

    def n_frames(self, split: str | None = None) -> int:
        return sum(p.n_frames for p in self.select(split))

    def _path(self, pid: str, name: str) -> Path:
        path = self.root / pid / f"{name}.npy"
        if not path.is_file():
            raise KeyError(f"{self.root}: no cached {name} for piece {pid!r}")
        return path

    def spectrogram(self, pid: str) -> np.ndarray:
        """Memory-mapped float32 (T, 144) spectrogram of piece ``pid`` (read-only)."""
        return np.load(self._path(pid, "spectrogram"), mmap_mode="r")

    def packed_targets(self, pid: str) -> np.ndarray:
        """Memory-mapped uint8 (T, 353) packed targets of piece ``pid`` (see :func:`pack_targets`)."""
        return np.load(self._path(pid, "targets"), mmap_mode="r")

    def encoded_targets(self, pid: str) -> dict[str, np.ndarray]:
        """Memory-mapped uint8 targets of piece ``pid`` (see :func:`mtlnb.piano.targets.encode_targets`)."""
        return unpack_targets(self.packed_targets(pid), self.settings.targets.n_keys)

    def targets(self, pid: str) -> dict[str, np.ndarray]:
        """float32 targets of a whole piece, decoded into memory (evaluation of one piece)."""
        return piano_targets.decode_targets(self.encoded_targets(pid))


def open_cache(cache_dir: str | os.PathLike, split: str | None = None, settings: PianoCacheSettings | None = None,
               check: bool = True) -> PianoCache:
    """Open a cache built by :func:`build_cache`.

    Parameters
    ----------
    split : str, optional
        Keep only this split's pieces.
    settings : PianoCacheSettings, optional
        The settings the caller needs; a cache built with others raises :class:`StaleCacheError`.
    check : bool
        Compare every piece's source fingerprint (two ``stat`` calls) with the dataset and raise
        :class:`StaleCacheError` naming the pieces whose MIDI or audio changed.
    """
    cache_dir = Path(cache_dir)
    if not (cache_dir / MANIFEST).exists():
        raise StaleCacheError(f"{cache_dir}: no piano feature cache here (build it with piano_data.build_cache)")
    m = io.read_json(cache_dir / MANIFEST)
    if m["settings"].get("version") != CACHE_VERSION:
        raise StaleCacheError(f"{cache_dir} was built by cache version {m['settings'].get('version')}, "
                              f"this is {CACHE_VERSION}: rebuild it")
    if settings is not None and m["settings"] != settings.to_dict():
        changed = sorted(k for k in m["settings"] if m["settings"][k] != settings.to_dict().get(k))
        raise StaleCacheError(f"{cache_dir} was built with other settings ({', '.join(changed)} differ); "
                              "rebuild it or use default_cache_dir(root, settings)")
    cached = PianoCache(cache_dir, Path(m["dataset_root"]), PianoCacheSettings.from_dict(m["settings"]), [],
                        dict(m.get("left_out", {})))
    records = m["pieces"]
    if check:
        try:
            sources = {p.id: p for p in maestro.pieces(cached.dataset_root)}
        except FileNotFoundError as e:
            raise StaleCacheError(f"{cache_dir}: its dataset is gone ({e})") from None
        stale = io.changed_since({pid: rec["fingerprint"] for pid, rec in records.items()},
                                 lambda pid: _fingerprint(sources[pid]))  # a piece gone from the CSV: KeyError
        if stale:
            raise StaleCacheError(f"{cache_dir}: the sources of {len(stale)} piece(s) changed since they were "
                                  f"cached (e.g. {stale[:3]}); rebuild with build_cache")
        order = {pid: i for i, pid in enumerate(sources)}
        ids = sorted(records, key=lambda pid: order[pid])
    else:
        ids = list(records)
    cached.pieces = [CachedPiece(pid, records[pid]["split"], int(records[pid]["n_frames"])) for pid in ids
                     if split is None or records[pid]["split"] == split]
    return cached


# -------------------------------------------------------------------------------------------------------- samples


def context_window(spec: np.ndarray, t: int, context: int = CONTEXT) -> np.ndarray:
    """The ``context`` frames centred on frame ``t``, zeros beyond the piece's ends.

    Parameters
    ----------
    spec : ndarray (T, n_bins)
        A spectrogram (a memory map is read only where needed).
    t : int
        Centre frame, 0 <= t < T.
    context : int
        Odd window length.

    Returns
    -------
    ndarray float32 (context, n_bins)
    """
    if context < 1 or context % 2 == 0:
        raise ValueError(f"context must be a positive odd number of frames, got {context}")
    n = len(spec)
    if not 0 <= t < n:
        raise IndexError(f"frame {t} is outside a spectrogram of {n} frames")
    half = context // 2
    lo, hi = t - half, t + half + 1
    if lo >= 0 and hi <= n:
        return np.array(spec[lo:hi], dtype=np.float32)
    out = np.zeros((context, spec.shape[1]), dtype=np.float32)
    out[max(0, -lo): context - max(0, hi - n)] = spec[max(0, lo): min(n, hi)]
    return out


def context_windows(spec: np.ndarray, context: int = CONTEXT) -> np.ndarray:
    """Every frame's context window at once, for evaluating a whole piece.

    Returns
    -------
    ndarray float32 (T, context, n_bins), read-only
        A strided view into one zero-padded copy of ``spec`` (memory: one piece, not ``context`` pieces).
    """
    if context < 1 or context % 2 == 0:
        raise ValueError(f"context must be a positive odd number of frames, got {context}")
    half = context // 2
    padded = np.zeros((len(spec) + 2 * half, spec.shape[1]), dtype=np.float32)
    padded[half:half + len(spec)] = spec
    view = np.lib.stride_tricks.sliding_window_view(padded, context, axis=0)  # (T, n_bins, context)
    return view.transpose(0, 2, 1)


class _FrameReader:
    """Maps a global frame index over a list of pieces to (piece, frame) and reads samples, keeping at most
    ``max_open`` pieces mapped (least recently used are dropped), so memory stays flat however large the cache."""

    def __init__(self, cache: PianoCache, pieces: list[CachedPiece], context: int, max_open: int):
        if not pieces:
            raise ValueError(f"{cache.root}: no cached pieces to read from")
        if max_open < 1:
            raise ValueError(f"max_open must be >= 1, got {max_open}")
        self.cache, self.pieces, self.context, self.max_open = cache, pieces, context, max_open
        self.starts = np.concatenate([[0], np.cumsum([p.n_frames for p in pieces])]).astype(np.int64)
        self.n_bins = cache.spectrogram(pieces[0].id).shape[1]
        self._open: OrderedDict[str, tuple] = OrderedDict()

    def __getstate__(self):  # memory maps are not sent to DataLoader workers; each opens its own
        return {**self.__dict__, "_open": OrderedDict()}

    def __len__(self) -> int:
        return int(self.starts[-1])

    def arrays(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Memory maps of piece ``k``: spectrogram (T, 144) float32 and packed targets (T, 353) uint8."""
        pid = self.pieces[k].id
        if pid in self._open:
            self._open.move_to_end(pid)
        else:
            self._open[pid] = (self.cache.spectrogram(pid), self.cache.packed_targets(pid))
            if len(self._open) > self.max_open:
                self._open.popitem(last=False)
        return self._open[pid]

    def locate(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(piece number, frame within the piece) of global frame indices."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"frame index out of range for {len(self)} frames")
        k = np.searchsorted(self.starts, indices, side="right") - 1
        return k, indices - self.starts[k]

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Context windows (B, context, 144) float32 and decoded targets of global frame ``indices`` (B,)."""
        pieces, frames = self.locate(indices)
        offsets = np.arange(self.context) - self.context // 2
        x = np.zeros((len(frames), self.context, self.n_bins), dtype=np.float32)
        y = np.empty((len(frames), 4 * self.cache.settings.targets.n_keys + 1), dtype=np.uint8)
        for k in np.unique(pieces):
            sel = np.flatnonzero(pieces == k)
            spec, packed = self.arrays(int(k))
            rows = frames[sel, None] + offsets  # (b, context) frame numbers; outside the piece -> zeros
            inside = (rows >= 0) & (rows < len(spec))
            x[sel] = spec[np.clip(rows, 0, len(spec) - 1)]
            x[sel] *= inside[..., None]
            y[sel] = packed[frames[sel]]
        return x, piano_targets.decode_targets(unpack_targets(y, self.cache.settings.targets.n_keys))


def _to_torch(x: np.ndarray, y: dict[str, np.ndarray]):
    return torch.from_numpy(x), {n: torch.from_numpy(v) for n, v in y.items()}


class PianoFrames(Dataset):
    """Map-style dataset: item ``i`` is the i-th frame of the selected pieces (pieces in CSV order).

    Each item is ``(x, targets)``: ``x`` a float32 tensor (11, 144), ``targets`` a dict of float32 tensors
    ``onsets``, ``frames``, ``offsets``, ``velocity`` (88,) and ``sustain`` (1,).  For random training batches over
    all of MAESTRO prefer :class:`PianoFrameStream`: a shuffling sampler over this dataset draws a permutation of
    all 25 M indices (200 MB).
    """

    def __init__(self, cache: PianoCache, split: str | None = None, context: int = CONTEXT, max_open: int = MAX_OPEN):
        self.reader = _FrameReader(cache, cache.select(split), context, max_open)

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int):
        index = int(index)
        if index < 0:
            index += len(self)
        x, y = self.reader.batch(np.array([index]))
        return _to_torch(x[0], {n: v[0] for n, v in y.items()})


class PianoFrameStream(IterableDataset):
    """Streams training samples: frames drawn uniformly at random (with replacement) from the selected pieces.

    Memory does not grow with the dataset: only the per-piece frame counts are held.  Deterministic for a seed:
    DataLoader worker ``w`` of ``W`` draws from ``default_rng([seed, epoch, w])`` and yields its share of
    ``n_samples``.  With ``shuffle=False`` it yields every frame once, in order (worker ``w`` takes pieces
    ``w, w + W, ...``), for evaluation.

    Parameters
    ----------
    cache : PianoCache
    split : str, optional
        Which pieces ("train" for training).
    n_samples : int, optional
        Samples per pass, over all workers (with ``batch_size``, each worker's last batch may be smaller);
        None = endless.  Ignored with ``shuffle=False``.
    batch_size : int, optional
        Yield ready batches (x (B, 11, 144), targets (B, 88) / (B, 1)) for ``DataLoader(batch_size=None)``:
        far fewer Python calls per sample than the default collation.  None yields single samples.
    seed : int
        Random stream; call :meth:`set_epoch` to draw a new one per epoch.
    context, max_open
        Window length; pieces kept mapped at once.
    shuffle : bool
        Random draws (training) or one ordered pass (evaluation).
    """

    def __init__(self, cache: PianoCache, split: str | None = "train", n_samples: int | None = None,
                 batch_size: int | None = None, seed: int = 0, context: int = CONTEXT, max_open: int = MAX_OPEN,
                 shuffle: bool = True):
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"PianoFrameStream: batch_size must be >= 1, got {batch_size}")
        if n_samples is not None and n_samples < 0:
            raise ValueError(f"PianoFrameStream: n_samples must be >= 0, got {n_samples}")
        self.reader = _FrameReader(cache, cache.select(split), context, max_open)
        self.n_samples, self.batch_size, self.seed, self.shuffle, self.epoch = n_samples, batch_size, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _indices(self) -> Iterator[np.ndarray]:
        """Chunks of global frame indices for this worker."""
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info else (0, 1)
        if not self.shuffle:
            for k in range(worker, len(self.reader.pieces), n_workers):
                for a in range(self.reader.starts[k], self.reader.starts[k + 1], _CHUNK):
                    yield np.arange(a, min(a + _CHUNK, self.reader.starts[k + 1]))
            return
        rng = np.random.default_rng([self.seed, self.epoch, worker])
        if self.n_samples is None:
            remaining = None
        else:  # split n_samples over the workers, the first ones taking the remainder
            remaining = self.n_samples // n_workers + (worker < self.n_samples % n_workers)
        chunk = self.batch_size or _CHUNK
        while remaining is None or remaining > 0:
            size = chunk if remaining is None else min(chunk, remaining)
            yield rng.integers(0, len(self.reader), size)
            if remaining is not None:
                remaining -= size

    def __iter__(self):
        if self.batch_size is None:
            for chunk in self._indices():
                x, y = self.reader.batch(chunk)  # read a chunk at once, hand out single samples
                for j in range(len(chunk)):
                    yield _to_torch(x[j], {n: v[j] for n, v in y.items()})
            return
        pending = np.empty(0, dtype=np.int64)
        for chunk in self._indices():
            pending = np.concatenate([pending, chunk])
            while len(pending) >= self.batch_size:
                yield _to_torch(*self.reader.batch(pending[: self.batch_size]))
                pending = pending[self.batch_size:]
        if len(pending):
            yield _to_torch(*self.reader.batch(pending))


# ------------------------------------------------------------------------------------------ batches for training


class PianoFrameBatches(Dataset):
    """The frames of one split as samples that are read a whole batch at a time.

    Item ``i`` is a dict ``{"x": (11, 144), "piece": int, <task>: (88,) or (1,)}`` (float32 tensors); the
    DataLoader fetches batches through :meth:`__getitems__`, one vectorised read per batch (the same dict with a
    leading batch axis), so a batch costs a few NumPy calls instead of 64 item calls.

    Parameters
    ----------
    cache : PianoCache
    split : str, optional
        "train", "validation", "test" or None (all pieces).
    shuffle : bool
        Training data (random batches, :class:`RandomBatches`) or evaluation data (in order,
        :class:`SequentialBatches`); :meth:`mtlnb.piano.training.PianoTask.batch_sampler` asks.
    """

    def __init__(self, cache: PianoCache, split: str | None = "train", shuffle: bool = True):
        self.frames = PianoFrames(cache, split)
        self.cache, self.split, self.shuffle = cache, split, shuffle
        self.pieces = cache.select(split)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        x, y = self.frames.reader.batch(idx)
        piece, _ = self.frames.reader.locate(idx)
        return {"x": torch.from_numpy(x), "piece": torch.from_numpy(piece),
                **{t: torch.from_numpy(v) for t, v in y.items()}}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([int(index)])
        return {k: v[0] for k, v in batch.items()}


class RandomBatches(Sampler[list[int]]):
    """``n_batches`` batches of indices drawn uniformly with replacement; seeded by (seed, epoch)."""

    def __init__(self, n: int, batch_size: int, n_batches: int, seed: int = 0):
        if n < 1 or batch_size < 1 or n_batches < 1:
            raise ValueError(f"RandomBatches: need n, batch_size, n_batches >= 1, got {n}, {batch_size}, {n_batches}")
        self.n, self.batch_size, self.n_batches, self.seed, self.epoch = n, batch_size, n_batches, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for _ in range(self.n_batches):
            yield rng.integers(0, self.n, self.batch_size).tolist()

    def __len__(self) -> int:
        return self.n_batches


class SequentialBatches(Sampler[list[int]]):
    """All indices in order, in batches of ``batch_size`` (evaluation)."""

    def __init__(self, n: int, batch_size: int):
        if n < 0 or batch_size < 1:
            raise ValueError(f"SequentialBatches: need n >= 0 and batch_size >= 1, got {n}, {batch_size}")
        self.n, self.batch_size = n, batch_size

    def set_epoch(self, epoch: int) -> None:  # the order never changes
        pass

    def __iter__(self) -> Iterator[list[int]]:
        for a in range(0, self.n, self.batch_size):
            yield list(range(a, min(a + self.batch_size, self.n)))

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)
