"""Camera-PrIMuS on disk: the corpus layout, id lists and cross-validation folds.

The same code reads the real archive and the synthetic corpus that :mod:`mtlnb.camera_primus.corpus.synthetic` writes::

    <root>/Corpus/<id>/<id>.semantic          one line of tab-separated semantic tokens
                      <id>_distorted.jpg      camera-like image (the OMR input)
                      <id>.png                clean engraving
                      <id>.mei  <id>.agnostic  regular_pae.pae
                      <id>.wav                rendered audio (the A2S input; absent from the real archive, which
                                              users render themselves, as the baseline did)

Folds follow the late-fusion baseline (Alfaro-Contreras et al. 2023): five test folds partition the ids; for each
fold the remaining ids are split into training and validation sets, the validation set as large as the test set
(13,371 / 4,457 / 4,457 on the 22,285 cleansed ids).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# File names inside Corpus/<id>/ (the real archive's names, plus the rendered audio).
SEMANTIC = "{id}.semantic"
DISTORTED = "{id}_distorted.jpg"
CLEAN = "{id}.png"
MEI = "{id}.mei"
AGNOSTIC = "{id}.agnostic"
PAE = "regular_pae.pae"
AUDIO = "{id}.wav"


def corpus_dir(root: str | os.PathLike) -> Path:
    """The folder of sample folders: ``root/Corpus``, or ``root`` itself if it holds ``<id>/<id>.semantic``."""
    root = Path(root)
    if (root / "Corpus").is_dir():
        return root / "Corpus"
    if root.is_dir() and (root.name == "Corpus" or any(
            (p / f"{p.name}.semantic").is_file() for p in root.iterdir() if p.is_dir())):
        return root
    raise FileNotFoundError(f"{root}: no Corpus/ folder here (expected <root>/Corpus/<id>/...)")


@dataclass(frozen=True)
class SamplePaths:
    """Paths of one sample's files (they need not all exist)."""

    id: str
    folder: Path

    def file(self, pattern: str) -> Path:
        return self.folder / pattern.format(id=self.id)

    @property
    def semantic(self) -> Path:
        return self.file(SEMANTIC)

    @property
    def distorted(self) -> Path:
        return self.file(DISTORTED)

    @property
    def clean(self) -> Path:
        return self.file(CLEAN)

    @property
    def audio(self) -> Path:
        return self.file(AUDIO)

    @property
    def pae(self) -> Path:
        return self.file(PAE)

    @property
    def mei(self) -> Path:
        return self.file(MEI)

    @property
    def agnostic(self) -> Path:
        return self.file(AGNOSTIC)


class PrimusCorpus:
    """A Camera-PrIMuS-layout corpus on disk (real or synthetic).

    Parameters
    ----------
    root : path
        The folder holding ``Corpus/`` (or ``Corpus/`` itself).
    """

    def __init__(self, root: str | os.PathLike):
        self.corpus = corpus_dir(root)
        self.root = self.corpus.parent

    def ids(self) -> list[str]:
        """Sorted ids of the finished sample folders (hidden ``.partial`` folders of a build are not samples)."""
        return sorted(p.name for p in self.corpus.iterdir() if p.is_dir() and not p.name.startswith("."))

    def paths(self, sample_id: str) -> SamplePaths:
        return SamplePaths(sample_id, self.corpus / sample_id)

    def tokens(self, sample_id: str) -> list[str]:
        """The sample's semantic tokens, validated (``ValueError`` naming the file and the bad token)."""
        from mtlnb.camera_primus.notation.semantic import read_semantic

        return read_semantic(self.paths(sample_id).semantic)

    def __len__(self) -> int:
        return len(self.ids())

    def __repr__(self) -> str:
        return f"PrimusCorpus({str(self.root)!r})"


def read_id_list(path: str | os.PathLike) -> list[str]:
    """Ids from a list file (one per line, as ``clean_samples.dat`` and the fold files); blank lines ignored."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def write_id_list(path: str | os.PathLike, ids: list[str]) -> None:
    from mtlnb.core import io

    io.write_text(path, "\n".join(ids) + "\n")


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold: disjoint id lists."""

    index: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def sizes(self) -> tuple[int, int, int]:
        return len(self.train), len(self.val), len(self.test)


def make_folds(ids: list[str], k: int = 5, seed: int = 42) -> list[Fold]:
    """k folds of the baseline's structure.

    The shuffled ids are cut into ``k`` test folds that partition them (sizes differ by at most one).  For fold
    ``f`` the other ids are shuffled again (seeded by ``seed`` and ``f``) and the first ``len(test)`` of them form
    the validation set, the rest the training set: 60 / 20 / 20 for ``k = 5``.
    """
    if k < 3:
        raise ValueError(f"make_folds needs k >= 3 (train, validation and test), got {k}")
    ids = sorted(set(ids))
    if len(ids) < k:
        raise ValueError(f"make_folds: {len(ids)} ids cannot fill {k} folds")
    order = np.random.default_rng(seed).permutation(len(ids))
    parts = np.array_split(order, k)
    folds = []
    for f, test_idx in enumerate(parts):
        test = [ids[i] for i in sorted(test_idx)]
        test_set = set(test)
        rest = [i for i in ids if i not in test_set]
        rest_order = np.random.default_rng([seed, f]).permutation(len(rest))
        val = sorted(rest[i] for i in rest_order[: len(test)])
        train = sorted(rest[i] for i in rest_order[len(test):])
        folds.append(Fold(f, tuple(train), tuple(val), tuple(test)))
    return folds


def load_folds(folds_dir: str | os.PathLike, k: int = 5) -> list[Fold]:
    """Read ``{train,val,test}_gt_fold{f}.dat`` files (the baseline's ``ScenarioX`` layout)."""
    folds_dir = Path(folds_dir)
    folds = []
    for f in range(k):
        parts = {}
        for split in ("train", "val", "test"):
            path = folds_dir / f"{split}_gt_fold{f}.dat"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: fold file missing")
            parts[split] = tuple(read_id_list(path))
        folds.append(Fold(f, parts["train"], parts["val"], parts["test"]))
    return folds


def write_folds(folds_dir: str | os.PathLike, folds: list[Fold]) -> None:
    """Write folds in the baseline's file layout."""
    for fold in folds:
        for split in ("train", "val", "test"):
            write_id_list(Path(folds_dir) / f"{split}_gt_fold{fold.index}.dat", list(getattr(fold, split)))


def folds_for(ids: list[str], baseline_folds_dir: str | os.PathLike | None = None, k: int = 5,
              seed: int = 42) -> tuple[list[Fold], str]:
    """The baseline's folds when they cover exactly ``ids``, else folds generated with :func:`make_folds`.

    Returns the folds and where they came from (``"baseline"`` or ``"generated"``), so notebooks can say which.
    """
    if baseline_folds_dir is not None and Path(baseline_folds_dir).is_dir():
        folds = load_folds(baseline_folds_dir, k)
        covered = set().union(*(set(f.test) for f in folds))
        if covered == set(ids):
            return folds, "baseline"
    return make_folds(ids, k, seed), "generated"


def subsample_fold(fold: Fold, fraction: float, seed: int = 42) -> Fold:
    """Keep a simple random ``fraction`` of each split, as the thesis's 60 % subset (36 / 12 / 12 %).

    Sizes are ``round(fraction * n)`` per split: 13,371 / 4,457 / 4,457 → 8,023 / 2,674 / 2,674 (thesis Table 1).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"subsample_fold: fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return fold
    rng = np.random.default_rng([seed, fold.index])

    def pick(ids: tuple[str, ...]) -> tuple[str, ...]:
        keep = rng.choice(len(ids), size=round(fraction * len(ids)), replace=False)
        return tuple(sorted(ids[i] for i in keep))

    return Fold(fold.index, pick(fold.train), pick(fold.val), pick(fold.test))


def scenario_subset(train_ids: tuple[str, ...] | list[str], percent: float, seed: int) -> list[str]:
    """A random ``percent`` % of a training fold, as the baseline's scenario OMR trainings.

    Size ``int(len * percent / 100)`` as the baseline's ``folds_creation.py`` computes it.
    """
    n = int(len(train_ids) * percent / 100)
    if n < 1:
        raise ValueError(f"{percent} % of {len(train_ids)} training ids is empty")
    keep = np.random.default_rng(seed).choice(len(train_ids), size=n, replace=False)
    return sorted(train_ids[i] for i in keep)
