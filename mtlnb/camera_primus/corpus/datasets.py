"""Vocabulary and torch datasets over a feature cache.

The vocabulary is the baseline's: the sorted set of tokens in a training fold, shared by both modalities; index
``len(vocabulary)`` is the CTC blank (the baseline's convention: the last class).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from mtlnb.core import io
from mtlnb.camera_primus.corpus.feature_cache import FeatureCache

MODALITIES = ("image", "audio", "both")


@dataclass(frozen=True)
class Vocabulary:
    """Symbols of a training fold, sorted; ids 0 … len-1, blank = len."""

    symbols: tuple[str, ...]

    @classmethod
    def from_sequences(cls, sequences: Iterable[Sequence[str]]) -> "Vocabulary":
        return cls(tuple(sorted({tok for seq in sequences for tok in seq})))

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def blank(self) -> int:
        return len(self.symbols)

    @property
    def index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols)}

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token ids; ``KeyError`` naming the token if it is not in the vocabulary."""
        idx = self.index
        missing = [t for t in tokens if t not in idx]
        if missing:
            raise KeyError(f"tokens not in the training vocabulary: {missing[:5]}")
        return [idx[t] for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.symbols[i] for i in ids]

    def save(self, path: str | os.PathLike) -> None:
        io.write_json(path, {"symbols": list(self.symbols), "blank": self.blank})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        with open(path, encoding="utf-8") as f:
            return cls(tuple(json.load(f)["symbols"]))


def load_labels(cache: FeatureCache, ids: Iterable[str]) -> dict[str, list[str]]:
    """Semantic tokens of ``ids`` read from the cache's corpus (validated when the cache was built)."""
    from mtlnb.camera_primus.corpus.primus import PrimusCorpus

    corpus = PrimusCorpus(cache.corpus_root)
    return {sid: corpus.tokens(sid) for sid in ids}


class PrimusDataset(Dataset):
    """(image, spectrogram, token ids) per sample, or one modality.

    Parameters
    ----------
    cache : FeatureCache
    ids : sequence of str
        Samples of this split.  Ids the cache left out (unreadable sources) are skipped with a warning that counts
        them; ``left_out`` lists them with their reasons.
    vocabulary : Vocabulary
        A token outside it (possible in validation/test folds) makes the sample's label unencodable: such samples
        are kept and their unknown tokens mapped to nothing only if ``drop_unknown`` is True; by default they raise.
    modality : "image", "audio" or "both"

    Items are dicts: ``id``; ``image`` float32 (1, 64, W_img) and/or ``audio`` float32 (1, 256, W_audio);
    ``labels`` int64 (L,); ``tokens`` list of str.
    """

    def __init__(self, cache: FeatureCache, ids: Sequence[str], vocabulary: Vocabulary, modality: str = "both",
                 drop_unknown: bool = False):
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        available = set(cache.ids)
        self.left_out = {sid: cache.left_out.get(sid, "not in the feature cache") for sid in ids
                         if sid not in available}
        if self.left_out:
            warnings.warn(f"{len(self.left_out)} of {len(ids)} samples left out (see .left_out): "
                          + "; ".join(f"{k}: {v}" for k, v in list(self.left_out.items())[:3]), stacklevel=2)
        self.ids = [sid for sid in ids if sid in available]
        self.cache = cache
        self.vocabulary = vocabulary
        self.modality = modality
        self.tokens = load_labels(cache, self.ids)
        index = vocabulary.index
        self.labels = {}
        for sid, toks in self.tokens.items():
            unknown = [t for t in toks if t not in index]
            if unknown and not drop_unknown:
                raise KeyError(f"{sid}: tokens outside the training vocabulary {unknown[:5]}")
            self.labels[sid] = [index[t] for t in toks if t in index]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        sid = self.ids[i]
        item = {"id": sid, "labels": torch.tensor(self.labels[sid], dtype=torch.long), "tokens": self.tokens[sid]}
        if self.modality in ("image", "both"):
            item["image"] = torch.from_numpy(self.cache.image(sid))[None]
        if self.modality in ("audio", "both"):
            item["audio"] = torch.from_numpy(self.cache.cqt(sid))[None]
        return item

    def widths(self, kind: str) -> list[int]:
        """Feature widths in dataset order (``kind`` "image" or "audio"), from the .npy headers."""
        w = self.cache.widths("image" if kind == "image" else "cqt")
        return [w[sid] for sid in self.ids]


def collate(batch: list[dict]) -> dict:
    """Pad a list of items into a batch.

    Returns ``ids``; ``image`` (B, 1, 64, W_max) and ``image_widths`` (B,) and/or ``audio`` (B, 1, 256, W_max) and
    ``audio_widths`` (B,), zero-padded on the right like the baseline; ``labels`` (B, L_max) padded with -1 (never
    read: CTC uses ``label_lengths``); ``label_lengths`` (B,); ``tokens``.
    """
    out: dict = {"ids": [b["id"] for b in batch], "tokens": [b["tokens"] for b in batch]}
    for key in ("image", "audio"):
        if key in batch[0]:
            widths = [b[key].shape[-1] for b in batch]
            x = torch.zeros(len(batch), 1, batch[0][key].shape[1], max(widths))
            for i, b in enumerate(batch):
                x[i, :, :, : widths[i]] = b[key]
            out[key] = x
            out[f"{key}_widths"] = torch.tensor(widths, dtype=torch.long)
    lengths = [len(b["labels"]) for b in batch]
    labels = torch.full((len(batch), max(lengths, default=0)), -1, dtype=torch.long)
    for i, b in enumerate(batch):
        labels[i, : lengths[i]] = b["labels"]
    out["labels"] = labels
    out["label_lengths"] = torch.tensor(lengths, dtype=torch.long)
    return out


class WidthBucketSampler(Sampler[list[int]]):
    """Batches of similar width, in a seeded random order: less padding, same samples per epoch.

    The dataset is sorted by width, cut into batches of ``batch_size``, and the batches are shuffled each epoch
    (samples of equal width are shuffled among themselves first).  Call :meth:`set_epoch` for a new order.
    """

    def __init__(self, widths: Sequence[int], batch_size: int, seed: int = 42):
        self.widths = np.asarray(widths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = np.lexsort((rng.random(len(self.widths)), self.widths))
        batches = [order[i: i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        for j in rng.permutation(len(batches)):
            yield batches[j]

    def __len__(self) -> int:
        return (len(self.widths) + self.batch_size - 1) // self.batch_size
