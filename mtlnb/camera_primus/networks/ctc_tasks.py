"""The CTC transcription tasks of the GradSPSA study (OMR, A2S, GradSPSA A2S) for :func:`mtlnb.core.training.train`,
the check that removes samples CTC cannot align, and the per-sample posteriors handed to the word-graph stage.

CTC convention
--------------
Classes are the training fold's sorted vocabulary ``0 … |V|-1`` plus the **blank at index |V|** (the last class),
the baseline's convention (Keras ``ctc_batch_cost`` takes the last class as blank); ``Vocabulary.blank`` gives it.
The loss is :func:`mtlnb.camera_primus.networks.losses.ctc_loss` (Keras' per-sample negative log-likelihood, averaged
over the batch), always computed in float32 -- also under mixed precision, where it is the one place half precision
would hurt.  GradSPSA's loss adds the network's gradual soft sharing term (thesis Eq. 5: ``L_CTC + L_GS``).

Validation: greedy CTC decoding (best class per frame, repeats merged, blanks removed; the baseline's
unimodal decoder) and the corpus-level Symbol Error Rate of :func:`mtlnb.camera_primus.metrics.ser`,
``100 · Σ edit distance / Σ reference length`` (``val_ser``, lower is better), plus the mean CTC loss of the
samples that CTC can align (``val_loss``).

Feasibility
-----------
CTC emits a label of length L with r adjacent repeats (``a a`` needs a blank between them) only if the network
gives at least ``L + r`` frames.  :func:`check_ctc_feasible` finds the samples that fail this before training (and
those with an empty label, which the loss rejects); :func:`filter_feasible` leaves them out with a warning that
counts them, so that no batch ever yields an infinite loss.  Validation and test sets are not filtered: a sample
the network cannot emit is simply an error there.

Posteriors file (``posteriors_<split>.npz``, what the word-graph stage reads)
---------------------------------------------------------------------------
One uncompressed NumPy ``.npz`` per split (a zip of ``.npy`` members, so ``np.load`` reads one sample at a time):

=====================  ===================================================================================
key                    value
=====================  ===================================================================================
``<sample id>``        float16 (default) or float32, shape ``(T_i, |V|+1)``: natural-log softmax posteriors of
                       the sample's valid frames in time order (batch padding removed), blank last.  No floor is
                       applied (the baseline's ``log(1e-11)`` for ``-inf`` is the word-graph stage's business).
``__vocabulary__``     unicode array ``(|V|,)``: column ``j`` is symbol ``__vocabulary__[j]``
``__blank__``          int64 scalar: the blank column (``|V|``)
``__format__``         str scalar ``"mtlnb.ctc-posteriors/1"``
=====================  ===================================================================================

Keys starting with ``__`` are reserved.  :func:`load_posteriors` returns a lazy read-only mapping over it.

Choices where the papers are silent
-----------------------------------
- **Batches by width** (``batching="bucket"``, :class:`mtlnb.camera_primus.corpus.datasets.WidthBucketSampler`):
  samples of similar width share a batch, so little zero padding reaches the BiLSTMs (they read padding: no packing,
  as in the baseline).  ``"random"`` gives the baseline's shuffled batches.
- **Validation batches** use the same bucketing (``TrainConfig.eval_batch_size``; default the training batch size).
  The baseline validated one sample at a time; bucketed batches differ from that only by the few padded columns
  the backward LSTM reads, and are an order of magnitude faster (the nine scenarios × five folds validate on full
  validation folds every epoch).  Set ``eval_batch_size=1`` for the baseline's exact procedure.
- **Posteriors** are computed one sample at a time by default (``batch_size=1``), exactly as the baseline's test.

Host and device
---------------
The labels and lengths stay on the host (``CTCTask.host_keys``: labels, input widths, label lengths, and the frames
each label needs, computed at collation): the CTC loss validates them on the host (torch copies the labels to the
device itself, without waiting), and checking them every step then never waits for the device.  Only the inputs go
to the device.
"""

from __future__ import annotations

import copy
import os
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm  # widgets in a notebook (no stderr band when a bar closes), text elsewhere

from mtlnb.core import io
from mtlnb.camera_primus.networks import losses
from mtlnb.camera_primus import metrics
from mtlnb.camera_primus.corpus.datasets import PrimusDataset, Vocabulary, WidthBucketSampler, collate
from mtlnb.profiles import TrainProfile
from mtlnb.core.training import ShuffledBatchSampler, TrainConfig, load_weights, move_to, resolve_device, unwrap

POSTERIORS_FORMAT = "mtlnb.ctc-posteriors/1"
BATCHINGS = ("bucket", "random")
NETWORKS = ("omr", "a2s", "gradspsa")


def ctc_min_frames(labels: Sequence[int]) -> int:
    """Fewest CTC frames that can emit ``labels``: its length plus one blank between each pair of equal neighbours.

    >>> ctc_min_frames([3, 3, 5, 5, 5])
    8
    """
    labels = list(labels)
    return len(labels) + sum(a == b for a, b in zip(labels, labels[1:]))


def _batch_min_frames(labels: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """:func:`ctc_min_frames` of each row of a padded ``(B, L_max)`` label batch, as a ``(B,)`` tensor."""
    if labels.shape[1] < 2:
        return lengths.clone()
    valid = torch.arange(1, labels.shape[1], device=labels.device)[None, :] < lengths[:, None]
    repeats = ((labels[:, 1:] == labels[:, :-1]) & valid).sum(dim=1)
    return lengths + repeats


def greedy_decode(log_probs: torch.Tensor | np.ndarray, lengths: torch.Tensor | np.ndarray,
                  blank: int) -> list[list[int]]:
    """Best-path CTC decoding of a batch: argmax per frame, merge repeats, drop blanks.

    The one greedy CTC decoder of the package: validation calls it on the network's output, late fusion's
    unimodal rows through its one-sample, token-level wrapper :func:`mtlnb.camera_primus.decoding.search.greedy_decode`.
    A tensor's argmax runs on its device, so validation copies ``(B, T)`` class ids to the host instead of
    ``(B, T, |V|+1)`` posteriors; a NumPy array stays in NumPy (no torch thread pool wakes up for one sample).
    Ties go to the first (lowest) class in both.

    Parameters
    ----------
    log_probs : torch.Tensor or ndarray, shape (B, T, C)
        Frame-wise (log-)posteriors or logits (only the per-frame argmax is used), batch first.
    lengths : torch.Tensor or ndarray of int, shape (B,)
        Valid frames per sample (frames from ``lengths[b]`` on are padding).
    blank : int
        The blank class (``C - 1`` by this package's convention).

    Returns
    -------
    list of list of int, length B
        Symbol ids per sample, at most ``lengths[b]`` each.
    """
    best = log_probs.argmax(-1)  # the class axis: ``dim`` for a tensor, ``axis`` for an array
    if isinstance(best, torch.Tensor):
        best = best.cpu().numpy()
    out = []
    for path, n in zip(best, lengths.tolist()):
        path = path[:n]
        keep = np.ones(len(path), bool)
        keep[1:] = path[1:] != path[:-1]
        out.append([int(s) for s in path[keep] if s != blank])
    return out


def _item_widths(dataset: Dataset, key: str) -> list[int]:
    """Input widths of ``key`` ("image"/"audio") per sample: from the cache headers when the dataset offers them."""
    if hasattr(dataset, "widths"):
        return list(dataset.widths(key))
    return [int(dataset[i][key].shape[-1]) for i in range(len(dataset))]


@dataclass(frozen=True)
class CTCTask:
    """A CTC transcription task for :func:`mtlnb.core.training.train` (build it with :func:`omr_task`, :func:`a2s_task`
    or :func:`gradspsa_task`).

    The network is called as ``model(batch[input_key])``, or, ``paired``, as
    ``model(batch["audio"], batch["image"], batch["image_widths"])`` (GradSPSA); it returns batch-first log-posteriors
    ``(B, T, |V|+1)`` and has ``output_lengths(widths)``.
    """

    vocabulary: Vocabulary  # the training fold's symbols; the blank is len(vocabulary)
    input_key: str  # the batch entry transcribed and whose widths set the CTC lengths: "image" (OMR) or "audio"
    paired: bool = False  # GradSPSA: the network also reads the paired score image
    sharing_loss: bool = True  # GradSPSA: add the network's sharing_loss() (thesis Eq. 5); False = CTC only
    batching: str = "bucket"  # "bucket": batches of similar width (less padding); "random": the baseline's
    metric: str = "val_ser"  # selects best.pt (the baseline keeps the best validation SER)
    mode: str = "min"
    # Batch entries the training loop leaves on the host (mtlnb.core.training): lengths only.
    host_keys: tuple[str, ...] = ("labels", "image_widths", "audio_widths", "label_lengths", "label_min_frames")

    def __post_init__(self) -> None:
        if self.input_key not in ("image", "audio"):
            raise ValueError(f"CTCTask.input_key must be 'image' or 'audio', got {self.input_key!r}")
        if self.paired and self.input_key != "audio":
            raise ValueError("CTCTask: a paired (GradSPSA) task transcribes the audio; set input_key='audio'")
        if self.batching not in BATCHINGS:
            raise ValueError(f"CTCTask.batching must be one of {BATCHINGS}, got {self.batching!r}")
        if len(self.vocabulary) == 0:
            raise ValueError("CTCTask: empty vocabulary")

    @property
    def blank(self) -> int:
        return self.vocabulary.blank

    def collate(self, items: list[dict]) -> dict:
        """:func:`mtlnb.camera_primus.corpus.datasets.collate`, plus ``label_min_frames`` ``(B,)``: the CTC frames
        each label needs (:func:`ctc_min_frames`), computed here on the host so that the loss checks feasibility
        without reading labels back from the device."""
        batch = collate(items)
        batch["label_min_frames"] = _batch_min_frames(batch["labels"], batch["label_lengths"])
        return batch

    def _min_frames(self, batch: dict) -> torch.Tensor:
        """``label_min_frames`` of a batch (host), or computed from its labels for a batch collated elsewhere."""
        if "label_min_frames" in batch:
            return batch["label_min_frames"]
        return _batch_min_frames(batch["labels"].cpu(), batch["label_lengths"].cpu())

    def batch_sampler(self, dataset: Dataset, batch_size: int, seed: int):
        if self.batching == "bucket":
            return WidthBucketSampler(_item_widths(dataset, self.input_key), batch_size, seed)
        return ShuffledBatchSampler(len(dataset), batch_size, seed)

    def forward(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Float32 log-posteriors ``(B, T, |V|+1)`` (on the model's device) and valid frames ``(B,)`` (int64, on the
        host) of a batch."""
        if self.paired:
            log_probs = model(batch["audio"], batch["image"], batch["image_widths"])
        else:
            log_probs = model(batch[self.input_key])
        widths = batch[f"{self.input_key}_widths"]  # on the host (host_keys); .cpu() is then free
        lengths = torch.as_tensor(unwrap(model).output_lengths(widths.cpu()))
        if log_probs.ndim != 3 or log_probs.shape[-1] != len(self.vocabulary) + 1:
            raise ValueError(f"CTCTask: the network gave shape {tuple(log_probs.shape)}, expected "
                             f"(B, T, {len(self.vocabulary) + 1}) for {len(self.vocabulary)} symbols + blank")
        if int(lengths.max()) > log_probs.shape[1]:
            raise ValueError(f"CTCTask: output_lengths {lengths.tolist()} exceed the network's {log_probs.shape[1]} "
                             "frames")
        return log_probs.float(), lengths

    def loss(self, model: nn.Module, batch: dict) -> torch.Tensor:
        """Mean per-sample CTC loss of the batch (float32), plus the sharing term for GradSPSA.

        ``ValueError`` naming the samples if a label cannot be aligned (run :func:`filter_feasible` first).
        """
        log_probs, lengths = self.forward(model, batch)
        labels, label_lengths = batch["labels"], batch["label_lengths"]
        label_lengths_host = label_lengths.cpu()
        infeasible = (self._min_frames(batch) > lengths) | (label_lengths_host < 1)  # host tensors: no sync
        if bool(infeasible.any()):
            ids = [batch["ids"][i] for i in infeasible.nonzero().flatten().tolist()]
            raise ValueError(f"CTC cannot emit the labels of {ids} within their frames; leave them out with "
                             "mtlnb.camera_primus.networks.ctc_tasks.filter_feasible before training")
        loss = losses.ctc_loss(log_probs, labels, lengths, label_lengths, blank=self.blank)
        if self.paired and self.sharing_loss:
            loss = loss + unwrap(model).sharing_loss()
        return loss

    def check_dataset(self, dataset: Dataset, name: str) -> None:
        """``ValueError`` naming the samples of ``dataset`` with an empty reference label (SER is undefined for
        them), checked before training (:func:`mtlnb.core.training.train` calls it) from the dataset's ``ids`` and
        ``tokens`` where it has them."""
        ids, tokens = getattr(dataset, "ids", None), getattr(dataset, "tokens", None)
        if ids is None or tokens is None:
            return
        _refuse_empty_references([sid for sid in ids if len(tokens[sid]) == 0], name)

    def evaluate(self, model: nn.Module, batches: Iterable[dict]) -> dict[str, float]:
        """``{"ser": corpus SER in %, "loss": mean CTC loss of the alignable samples}`` by greedy decoding."""
        hyps, refs, loss_sum, n_loss = [], [], 0.0, 0
        for batch in batches:
            log_probs, lengths = self.forward(model, batch)
            hyps += [self.vocabulary.decode(ids) for ids in greedy_decode(log_probs, lengths, self.blank)]
            refs += batch["tokens"]
            _refuse_empty_references([sid for sid, t in zip(batch["ids"], batch["tokens"]) if len(t) == 0],
                                     "evaluated")
            labels, label_lengths = batch["labels"].cpu(), batch["label_lengths"].cpu()
            ok = (self._min_frames(batch) <= lengths) & (label_lengths > 0)
            if bool(ok.any()):
                rows = ok.nonzero().flatten().to(log_probs.device)
                per = losses.ctc_loss(log_probs[rows], labels[ok], lengths[ok], label_lengths[ok],
                                      blank=self.blank, reduction="none")
                loss_sum += float(per.sum())
                n_loss += int(ok.sum())
        return {"ser": metrics.ser(hyps, refs), "loss": loss_sum / n_loss if n_loss else float("nan")}


def _refuse_empty_references(ids: list[str], name: str) -> None:
    if ids:
        raise ValueError(f"{len(ids)} {name} sample(s) have an empty reference label ({', '.join(map(str, ids[:5]))}"
                         f"{', ...' if len(ids) > 5 else ''}); SER is undefined for them: leave them out")


def omr_task(vocabulary: Vocabulary, **options) -> CTCTask:
    """DNN_OMR: transcribe the distorted score image (``batch["image"]``)."""
    return CTCTask(vocabulary, "image", **options)


def a2s_task(vocabulary: Vocabulary, **options) -> CTCTask:
    """Baseline DNN_A2S: transcribe the CQT (``batch["audio"]``)."""
    return CTCTask(vocabulary, "audio", **options)


def gradspsa_task(vocabulary: Vocabulary, **options) -> CTCTask:
    """GradSPSA's DNN_A2S: transcribe the CQT while attending to the paired image through the frozen OMR
    (needs a ``modality="both"`` dataset); loss = CTC + the gradual soft sharing term."""
    return CTCTask(vocabulary, "audio", paired=True, **options)


def train_config(profile: TrainProfile, network: str, **overrides) -> TrainConfig:
    """The :class:`~mtlnb.core.training.TrainConfig` of one network under a run profile.

    Parameters
    ----------
    profile : TrainProfile
        ``profile.train`` of :func:`mtlnb.profiles.get_profile`.
    network : {"omr", "a2s", "gradspsa"}
        Picks the epochs and batch size (OMR 16, A2S 4, GradSPSA 2 pairs with the papers' values).
    **overrides
        Any other TrainConfig field (``seed``, ``device``, ``progress``, ``eval_batch_size`` ...).
    """
    if network not in NETWORKS:
        raise ValueError(f"train_config: network must be one of {NETWORKS}, got {network!r}")
    epochs = {"omr": profile.omr_epochs, "a2s": profile.a2s_epochs, "gradspsa": profile.gradspsa_epochs}[network]
    batch = {"omr": profile.omr_batch, "a2s": profile.a2s_batch, "gradspsa": profile.gradspsa_batch}[network]
    base = TrainConfig(epochs=epochs, batch_size=batch, optimizer="adam", lr=profile.learning_rate,
                       max_batches_per_epoch=profile.max_train_batches)
    return replace(base, **overrides)


def check_ctc_feasible(dataset: Dataset, output_lengths_fn: Callable, kind: str = "image") -> dict[str, str]:
    """Samples whose label CTC cannot emit within the frames the network gives them.

    Parameters
    ----------
    dataset : PrimusDataset or a map-style dataset of items with ``id``, ``labels`` and ``kind``
        A PrimusDataset is checked from its labels and the cache's width headers, without loading features.
    output_lengths_fn : callable
        Input widths (1-D array or tensor of int) → frames, e.g. ``model.output_lengths`` (``W // 2`` for the
        baseline CRNNs, ``W // 4`` for GradSPSA's A2S).
    kind : {"image", "audio"}
        Whose widths set the frames: the network's input.

    Returns
    -------
    dict
        ``{sample id: reason}`` for every infeasible sample (empty when all can be emitted), in dataset order.
        A label of length L with r equal neighbours needs ``L + r`` frames; an empty label is also infeasible
        (nothing to learn, and the loss rejects it).
    """
    if kind not in ("image", "audio"):
        raise ValueError(f"check_ctc_feasible: kind must be 'image' or 'audio', got {kind!r}")
    if isinstance(dataset, PrimusDataset):
        ids = list(dataset.ids)
        labels = [dataset.labels[sid] for sid in ids]
        widths = dataset.widths(kind)
    else:
        items = [dataset[i] for i in range(len(dataset))]
        ids = [it["id"] for it in items]
        labels = [[int(x) for x in it["labels"]] for it in items]
        widths = [int(it[kind].shape[-1]) for it in items]
    try:
        frames = [int(t) for t in np.asarray(output_lengths_fn(np.asarray(widths, dtype=np.int64))).reshape(-1)]
    except ValueError:  # a width with no frame at all: find which, one by one
        frames = []
        for w in widths:
            try:
                frames.append(int(output_lengths_fn(np.asarray([w], dtype=np.int64))[0]))
            except ValueError:
                frames.append(0)
    if len(frames) != len(ids):
        raise ValueError(f"check_ctc_feasible: output_lengths_fn gave {len(frames)} lengths for {len(ids)} widths")
    bad = {}
    for sid, lab, w, t in zip(ids, labels, widths, frames):
        need = ctc_min_frames(lab)
        if not lab:
            bad[sid] = "empty label"
        elif need > t:
            bad[sid] = (f"label of {len(lab)} symbols with {need - len(lab)} repeated neighbours needs {need} CTC "
                        f"frames, the network gives {t} ({kind} width {w})")
    return bad


def filter_feasible(dataset: Dataset, output_lengths_fn: Callable, kind: str = "image",
                    warn: bool = True) -> tuple[Dataset, dict[str, str]]:
    """Leave out the samples of :func:`check_ctc_feasible`; returns ``(filtered dataset, {id: reason})``.

    A PrimusDataset comes back as a PrimusDataset over the remaining ids, with the removed samples and reasons
    added to its ``left_out``; any other dataset as a :class:`torch.utils.data.Subset`.  With ``warn``, a
    ``UserWarning`` gives the count and the first ids.
    """
    bad = check_ctc_feasible(dataset, output_lengths_fn, kind)
    if warn and bad:
        warnings.warn(f"{len(bad)} of {len(dataset)} samples left out, CTC cannot emit their labels: "
                      + "; ".join(f"{k}: {v}" for k, v in list(bad.items())[:3]), stacklevel=2)
    if isinstance(dataset, PrimusDataset):
        kept = copy.copy(dataset)
        kept.ids = [sid for sid in dataset.ids if sid not in bad]
        kept.left_out = {**dataset.left_out, **bad}
        return kept, bad
    keep = [i for i in range(len(dataset)) if dataset[i]["id"] not in bad]
    return Subset(dataset, keep), bad


def _write_member(zf: zipfile.ZipFile, key: str, array: np.ndarray) -> None:
    with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


def save_posteriors(model: nn.Module, dataset: Dataset, path: str | os.PathLike, task: CTCTask, *,
                    batch_size: int = 1, dtype: str = "float16", device: str = "auto",
                    progress: bool = False) -> Path:
    """Write the log-posteriors of every sample of ``dataset`` to ``path`` (format in the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The trained network (run in eval mode, without gradients, in float32).
    dataset : Dataset
        Items with ``id`` and the task's inputs, in the order they are written.
    path : path
        The ``.npz`` to write (atomically, streamed one sample at a time, so memory stays small).
    task : CTCTask
        How to call the network; its vocabulary is stored with the posteriors.
    batch_size : int
        1 (default) runs each sample alone, as the baseline; larger is faster but pads, and the BiLSTMs read
        the padding.
    dtype : {"float16", "float32"}
        float16 halves the size (log-probabilities keep ~3 significant digits; a paper-size validation fold is
        several GB in float16).
    device : str
        As :attr:`TrainConfig.device`.

    Returns
    -------
    Path
        ``path``.
    """
    if dtype not in ("float16", "float32"):
        raise ValueError(f"save_posteriors: dtype must be 'float16' or 'float32', got {dtype!r}")
    dev = resolve_device(device)
    net = unwrap(model).to(dev)
    was_training = net.training
    net.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=task.collate)
    try:
        with io.atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            seen = set()
            for batch in tqdm(loader, desc=f"posteriors {Path(path).name}", disable=not progress, leave=False):
                batch = move_to(batch, dev, keep=task.host_keys)
                with torch.no_grad():
                    log_probs, lengths = task.forward(net, batch)
                for sid, lp, n in zip(batch["ids"], log_probs.cpu().numpy(), lengths.tolist()):
                    if sid.startswith("__") or sid in seen:
                        raise ValueError(f"save_posteriors: sample id {sid!r} is reserved or repeated")
                    seen.add(sid)
                    _write_member(zf, sid, lp[:n].astype(dtype))
            _write_member(zf, "__vocabulary__", np.array(task.vocabulary.symbols, dtype=str))
            _write_member(zf, "__blank__", np.int64(task.blank))
            _write_member(zf, "__format__", np.array(POSTERIORS_FORMAT))
    finally:
        net.train(was_training)
    return Path(path)


class Posteriors(Mapping):
    """Lazy, read-only view of a posteriors file: ``post[id]`` → float32 ``(T, |V|+1)``, read on access.

    Attributes: ``vocabulary`` (:class:`~mtlnb.camera_primus.corpus.datasets.Vocabulary`), ``blank`` (int), ``path``.
    Iterates over the sample ids in the order they were written.  Use as a context manager (or call :meth:`close`) to
    release the file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._npz = np.load(self.path, allow_pickle=False)
        keys = set(self._npz.files)
        if "__format__" not in keys or str(self._npz["__format__"]) != POSTERIORS_FORMAT:
            self._npz.close()
            raise ValueError(f"{self.path} is not a posteriors file of format {POSTERIORS_FORMAT}")
        self.vocabulary = Vocabulary(tuple(str(s) for s in self._npz["__vocabulary__"]))
        self.blank = int(self._npz["__blank__"])
        self._ids = [k for k in self._npz.files if not k.startswith("__")]

    def __getitem__(self, sid: str) -> np.ndarray:
        if sid.startswith("__") or sid not in self._npz.files:
            raise KeyError(f"{sid!r} is not a sample of {self.path}")
        return self._npz[sid].astype(np.float32)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def close(self) -> None:
        self._npz.close()

    def __enter__(self) -> "Posteriors":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_posteriors(path: str | os.PathLike) -> Posteriors:
    """Open a file written by :func:`save_posteriors` (lazily; see :class:`Posteriors`)."""
    return Posteriors(path)


def posteriors_path(run_dir: str | os.PathLike, split: str) -> Path:
    """Where a run keeps a split's posteriors: ``run_dir/posteriors_<split>.npz``, next to ``best.pt``."""
    return Path(run_dir) / f"posteriors_{split}.npz"


def export_posteriors(run_dir: str | os.PathLike, model: nn.Module, task: CTCTask,
                      splits: Mapping[str, Dataset], **options) -> dict[str, Path]:
    """After training: load ``run_dir/best.pt`` into ``model`` and save each split's posteriors next to it.

    ``splits`` maps a split name ("val", "test") to its dataset; ``options`` go to :func:`save_posteriors`.
    Returns ``{split: path}``.
    """
    best = Path(run_dir) / "best.pt"
    if not best.exists():
        raise ValueError(f"export_posteriors: {best} does not exist; train first")
    load_weights(model, best)
    return {name: save_posteriors(model, ds, posteriors_path(run_dir, name), task, **options)
            for name, ds in splits.items()}
