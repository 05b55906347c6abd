"""The lattice store: each network's word graphs, kept per posteriors file so that every (OMR, A2S) pair and
scenario of a fold that fuses them reads them instead of decoding them again.

Why
---
:mod:`mtlnb.camera_primus.fusion.pipeline` caches its fused outputs per (OMR, A2S) pair, yet a word graph depends
on one modality only: the nine scenario OMRs of a fold are fused with the same A2S network, whose graphs would
otherwise be decoded nine times per pair.  So each modality's word graphs are stored once, under a key of what they
depend on, and reused by any later run that needs them (:func:`mtlnb.camera_primus.fusion.pipeline.run_fold`
passes the fold's :func:`mtlnb.camera_primus.fusion.pipeline.fold_lattice_dir`,
``<study root>/late_fusion/fold<k>/lattices``, shared by its pairs).

Layout and keys
---------------
A shard lives at ``<lattice_cache_dir>/<key[:24]>/shard-<ids>.npz`` (:func:`lattice_shard_path`), beside a
``settings.json`` saying what ``<key>`` hashes (:func:`save_settings`; for reading, never checked).  ``<key>``
(:func:`lattice_key`) hashes what a graph depends on: the posteriors file (:func:`file_stamp`: path, size,
modification time, as for late fusion's result shards: a retrained network writes a new file), the LM
(:func:`mtlnb.camera_primus.fusion.pipeline.lm_fingerprint`) and the
:class:`~mtlnb.camera_primus.decoding.search.DecoderConfig`.  ``<ids>`` hashes the sample ids of the shard (late
fusion groups them as its result shards, ``shard_size`` each), so a run with another sample cap writes its own last
shard instead of overwriting one.

Format (:data:`LATTICE_FORMAT`)
-------------------------------
A shard (:func:`save_lattices`, :class:`LatticeShard`) is an ``.npz`` holding every
:class:`~mtlnb.camera_primus.decoding.lattice.Lattice` array of its samples unchanged (member ``<j>.<name>`` for
the ``j``-th sample and each name of ``_LATTICE_ARRAYS``; float64 scores, int64 indices: the round trip is exact),
the vocabulary (``__vocabulary__``) and the decoder settings (``__decoder__``, JSON), each sample's
``__num_nodes__`` and ``__num_frames__``, and its format, full key and ids (``__format__``, ``__key__``,
``__ids__``), checked before use (:func:`usable_shard`); an unreadable or mismatching shard is decoded again.

Writers and readers
-------------------
Shards are written by late fusion's parent process only, atomically (:func:`mtlnb.core.io.write_npz`: temporary file,
then rename), and decoding is deterministic, so two runs writing the same shard at once write the same content
and a reader sees one whole file or the other.  Worker processes read a sample's lattice straight from its shard
(a lazy npz: one sample's members at a time).  Stale keys (a retrained network) are left on disk; deleting the
folder is always safe.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

from mtlnb.core import io
from mtlnb.camera_primus.decoding.lattice import Lattice
from mtlnb.camera_primus.decoding.search import DecoderConfig

# In every key and shard: a new layout takes a new name, so that old shards miss instead of misreading.
LATTICE_FORMAT = "mtlnb.lattice-shard/1"
# Every per-arc / per-node array of a Lattice, stored as is (dtype included) so that the round trip is exact.
_LATTICE_ARRAYS = ("src", "dst", "symbol", "acoustic", "graph", "lm", "t_start", "t_symbol", "t_end", "node_time")
# What reading a damaged or foreign npz can raise (zipfile's errors are none of the built-in I/O ones); public for
# readers that index a shard someone may have replaced since it was checked (late fusion's workers)
READ_ERRORS = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile)


def file_stamp(path: str | os.PathLike) -> dict:
    """What identifies a posteriors file in a cache key: ``{"path": resolved path, "size": bytes, "mtime_ns": int}``
    (a retrained network rewrites its file, which changes the modification time)."""
    st = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def lattice_key(posteriors: str | os.PathLike, lm_key: str, decoder: DecoderConfig) -> str:
    """Hex key of the word graphs of one posteriors file: its stamp (:func:`file_stamp`), the LM
    (:func:`mtlnb.camera_primus.fusion.pipeline.lm_fingerprint`) and the search settings."""
    return io.sha256_json({"format": LATTICE_FORMAT, "posteriors": file_stamp(posteriors), "lm": lm_key,
                           "decoder": asdict(decoder)})


def _key_dir(lattice_cache_dir: str | os.PathLike, key: str) -> Path:
    # the key's first 24 hex digits (96 bits) keep paths short; the full key inside each shard is what is checked
    return Path(lattice_cache_dir) / key[:24]


def lattice_shard_path(lattice_cache_dir: str | os.PathLike, key: str, ids: Sequence[str]) -> Path:
    """Where the lattices of the samples ``ids`` (in that order) under ``key`` are stored."""
    return _key_dir(lattice_cache_dir, key) / f"shard-{io.sha256_json(list(ids))[:16]}.npz"


def save_settings(lattice_cache_dir: str | os.PathLike, key: str, posteriors: str | os.PathLike, lm_key: str,
                  decoder: DecoderConfig) -> None:
    """Write ``<key[:24]>/settings.json`` atomically: what ``key`` (:func:`lattice_key` of the same arguments)
    hashes, for a person to tell the folders apart.  The store never reads it back."""
    io.write_json(_key_dir(lattice_cache_dir, key) / "settings.json",
                  {"key": key, "posteriors": file_stamp(posteriors), "lm": lm_key, "decoder": asdict(decoder)})


def save_lattices(path: str | os.PathLike, key: str, ids: Sequence[str], lattices: Sequence[Lattice]) -> None:
    """Write one shard of lattices atomically.

    Parameters
    ----------
    path : path
        The ``.npz`` to write (:func:`lattice_shard_path`).
    key : str
        :func:`lattice_key` of the lattices (stored, checked by readers).
    ids : sequence of str, length N
        Sample ids, in the order of ``lattices``.
    lattices : sequence of Lattice, length N ≥ 1
        Lattices of one vocabulary and one decoder configuration.
    """
    ids, lattices = list(ids), list(lattices)
    if not lattices or len(ids) != len(lattices):
        raise ValueError(f"save_lattices: {len(ids)} ids for {len(lattices)} lattices (need as many, ≥ 1) for {path}")
    first = lattices[0]
    for sid, lat in zip(ids, lattices):
        if lat.vocabulary != first.vocabulary or lat.config != first.config:
            raise ValueError(f"save_lattices: lattice {sid!r} has another vocabulary or decoder than {ids[0]!r}")
    arrays = {f"{j}.{name}": getattr(lat, name) for j, lat in enumerate(lattices) for name in _LATTICE_ARRAYS}
    config = asdict(first.config) if first.config is not None else None
    io.write_npz(path, **arrays, __format__=np.array(LATTICE_FORMAT), __key__=np.array(key),
                 __ids__=np.array(ids, dtype=str), __vocabulary__=np.array(first.vocabulary, dtype=str),
                 __decoder__=np.array(json.dumps(config)),
                 __num_nodes__=np.array([lat.num_nodes for lat in lattices], dtype=np.int64),
                 __num_frames__=np.array([lat.num_frames for lat in lattices], dtype=np.int64))


class LatticeShard:
    """A stored shard of lattices, read lazily: ``shard[sample id]`` → :class:`Lattice`, one sample's arrays read
    on access.  Attributes ``path``, ``key``, ``ids`` (list of str).  Use as a context manager (or :meth:`close`).

    Raises ``ValueError`` naming the file if it is not a lattice shard (other format, unreadable), and when a
    sample's arrays cannot be read (a damaged member); ``KeyError`` naming the file for a sample it does not hold.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._npz = np.load(self.path, allow_pickle=False)
        except READ_ERRORS as err:
            raise ValueError(f"LatticeShard: cannot read {self.path} ({err})") from None
        try:
            if str(self._npz["__format__"]) != LATTICE_FORMAT:
                raise ValueError(f"format {str(self._npz['__format__'])!r}, not {LATTICE_FORMAT!r}")
            self.key = str(self._npz["__key__"])
            self.ids = [str(i) for i in self._npz["__ids__"]]
            self._index = {sid: j for j, sid in enumerate(self.ids)}
            self._vocabulary = tuple(str(v) for v in self._npz["__vocabulary__"])
            config = json.loads(str(self._npz["__decoder__"]))
            self._config = DecoderConfig(**config) if config is not None else None
            self._num_nodes = self._npz["__num_nodes__"]
            self._num_frames = self._npz["__num_frames__"]
        except READ_ERRORS as err:
            self._npz.close()
            raise ValueError(f"LatticeShard: {self.path} is not a readable lattice shard ({err})") from None

    def __getitem__(self, sid: str) -> Lattice:
        if sid not in self._index:
            raise KeyError(f"{sid!r} is not a sample of {self.path}")
        j = self._index[sid]
        try:
            arrays = {name: self._npz[f"{j}.{name}"] for name in _LATTICE_ARRAYS}
        except READ_ERRORS as err:
            raise ValueError(f"LatticeShard: cannot read sample {sid!r} from {self.path} ({err!r})") from None
        return Lattice(vocabulary=self._vocabulary, num_nodes=int(self._num_nodes[j]),
                       num_frames=int(self._num_frames[j]), config=self._config, **arrays)

    def lattices(self) -> dict[str, Lattice]:
        """Every lattice of the shard, ``{sample id: Lattice}`` in stored order."""
        return {sid: self[sid] for sid in self.ids}

    def close(self) -> None:
        self._npz.close()

    def __enter__(self) -> "LatticeShard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def usable_shard(path: Path, key: str, ids: Sequence[str]) -> bool:
    """Whether ``path`` holds the lattices of exactly ``ids`` under ``key`` (else they are decoded again)."""
    if not path.is_file():
        return False
    try:
        with LatticeShard(path) as shard:
            return shard.key == key and shard.ids == list(ids)
    except ValueError:
        return False
