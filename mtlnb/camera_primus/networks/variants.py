"""The A2S trainings of notebook 09 ("Beyond the thesis"): one network trained with one thing changed -- its seed,
one of GradSPSA's additions removed, the sharing loss's γ or layer-pairing rule, the batch size, the epochs, or the
training subset -- beside the runs of notebooks 02-03.

A :class:`Variant` names what differs from the network notebook 03 trains (:func:`mtlnb.camera_primus.networks.runs.
train_network`); :func:`ensure_variant` trains it where it is missing, with the same data, vocabulary, validation,
posteriors export and resumable loop (:func:`mtlnb.core.training.train`), into ``models/fold<k>/<name>/``
(:meth:`Variant.name`), and returns at once where it is finished.  A variant equal to notebook 03's run (seed 42, no
change) *is* that run: :func:`ensure_variant` returns ``runs.ensure_run(study, fold, network)``.

Why here and not in :mod:`mtlnb.camera_primus.networks.runs`: ``runs.train_network`` takes no seed, network config,
batch or subset yet; once it does, :func:`ensure_variant` becomes a call of it with the overrides, and this module
shrinks to :class:`Variant`.  Until then it repeats ``train_network``'s steps (the order of seeding, building,
filtering, training and exporting is the same, so a variant equal to the main run would train the same network).

What a variant's fields mean (choices where the thesis is silent)
-----------------------------------------------------------------
- ``seed``: :attr:`mtlnb.core.training.TrainConfig.seed` -- the initialisation (``torch.manual_seed`` before the
  network is built), dropout masks and batch order.  42 is the baseline's, the one notebooks 02-03 train with.
- ``ablate``: one of :data:`mtlnb.camera_primus.networks.gradspsa_a2s.ADDITIONS`, removed by
  :func:`~mtlnb.camera_primus.networks.gradspsa_a2s.ablate` (``"sharing_loss"`` is γ = 0).
- ``gamma``, ``rule``: the sharing loss's γ and layer-pairing rule (:data:`mtlnb.camera_primus.networks.losses.
  SHARING_RULES`); ``None`` keeps the thesis's (1e-7, ``"resize"``).
- ``batch``, ``epochs``: ``None`` keeps the profile's (``TrainProfile.gradspsa_batch`` …).
- ``subset``: the training and validation samples.  ``"main"``: what notebook 03's run reads (the whole fold for
  A2S; for GradSPSA the profile's ``gradspsa_subset_fraction``, a simple random subset); ``"full"``: the whole
  fold; ``"random"``: a simple random ``fraction`` of each split (:func:`mtlnb.camera_primus.corpus.primus.
  subsample_fold`, the thesis's); ``"stratified"``: a stratified one of the same size
  (:func:`mtlnb.camera_primus.corpus.strata.stratified_subsample_fold`).  Both subsets are seeded by the corpus
  seed.  Posteriors are always exported for the whole validation and test folds, so every variant is evaluated on
  the same samples.

Canonical names: two variants that train the same thing get the same name (γ = 0 is the sharing-loss ablation;
a γ, rule, batch or epochs equal to the default is dropped; ``"main"`` is resolved to ``"full"`` or
``"random"``), so a grid that lists one training twice trains it once.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable

import torch

from mtlnb.camera_primus.corpus import primus
from mtlnb.camera_primus.corpus.datasets import PrimusDataset, Vocabulary
from mtlnb.camera_primus.corpus import strata
from mtlnb.camera_primus.networks import crnn, ctc_tasks, gradspsa_a2s, losses, runs
from mtlnb.core import io, scheduler
from mtlnb.core.training import TrainConfig, load_weights, train

DEFAULT_SEED = TrainConfig().seed  # 42, the baseline's: notebooks 02-03 train with it
DEFAULT_GAMMA = gradspsa_a2s.GradSPSAConfig(1).sharing_gamma  # the thesis's 1e-7
DEFAULT_RULE = gradspsa_a2s.GradSPSAConfig(1).sharing_rule  # "resize"
NETWORKS = ("a2s", "gradspsa")
SUBSETS = ("main", "full", "random", "stratified")
_MODALITY = {"a2s": "audio", "gradspsa": "both"}
_TASKS = {"a2s": ctc_tasks.a2s_task, "gradspsa": ctc_tasks.gradspsa_task}
INFO = "variant.json"  # what a variant folder was trained as (beside run.json's fields)


@dataclass(frozen=True)
class Variant:
    """One A2S training of notebook 09: what differs from notebook 03's run of ``network`` (module notes)."""

    network: str  # "a2s" (baseline) or "gradspsa"
    seed: int = DEFAULT_SEED  # training seed (initialisation, dropout, batch order)
    ablate: str | None = None  # a GradSPSA addition removed (gradspsa_a2s.ADDITIONS)
    gamma: float | None = None  # sharing-loss γ; None: the thesis's
    rule: str | None = None  # sharing-loss layer-pairing rule; None: the thesis's
    batch: int | None = None  # None: the profile's
    epochs: int | None = None  # None: the profile's
    subset: str = "main"  # "main", "full", "random" or "stratified"
    fraction: float = 0.6  # share of each split for "random" / "stratified" (the thesis: 0.6)

    def __post_init__(self):
        if self.network not in NETWORKS:
            raise ValueError(f"Variant.network must be one of {NETWORKS}, got {self.network!r}")
        if self.subset not in SUBSETS:
            raise ValueError(f"Variant.subset must be one of {SUBSETS}, got {self.subset!r}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"Variant.fraction must be in (0, 1], got {self.fraction}")
        gradspsa_only = {"ablate": self.ablate, "gamma": self.gamma, "rule": self.rule}
        if self.network != "gradspsa" and any(v is not None for v in gradspsa_only.values()):
            raise ValueError(f"Variant: {gradspsa_only} change GradSPSA only, not {self.network!r}")
        if self.ablate is not None and self.ablate not in gradspsa_a2s.ADDITIONS:
            raise ValueError(f"Variant.ablate must be one of {gradspsa_a2s.ADDITIONS}, got {self.ablate!r}")
        if self.gamma is not None and not self.gamma >= 0:
            raise ValueError(f"Variant.gamma must be >= 0, got {self.gamma}")
        if self.rule is not None and self.rule not in losses.SHARING_RULES:
            raise ValueError(f"Variant.rule must be one of {losses.SHARING_RULES}, got {self.rule!r}")
        for name in ("batch", "epochs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"Variant.{name} must be >= 1 or None, got {value}")

    def canonical(self, train_profile) -> "Variant":
        """The same training with every default spelled one way (module notes), for ``profile.train``."""
        v = self
        if v.ablate == "sharing_loss" or v.gamma == 0:
            v = replace(v, ablate="sharing_loss", gamma=None)
        if v.gamma is not None and v.gamma == DEFAULT_GAMMA:
            v = replace(v, gamma=None)
        if v.rule == DEFAULT_RULE or (v.ablate == "sharing_loss" and v.rule is not None):
            v = replace(v, rule=None)  # without the loss, its rule changes nothing
        default_batch = {"a2s": train_profile.a2s_batch, "gradspsa": train_profile.gradspsa_batch}[v.network]
        default_epochs = {"a2s": train_profile.a2s_epochs, "gradspsa": train_profile.gradspsa_epochs}[v.network]
        if v.batch == default_batch:
            v = replace(v, batch=None)
        if v.epochs == default_epochs:
            v = replace(v, epochs=None)
        if v.subset == "main":
            main_fraction = train_profile.gradspsa_subset_fraction if v.network == "gradspsa" else 1.0
            v = replace(v, subset="random", fraction=main_fraction) if main_fraction < 1 else replace(v, subset="full")
        if v.subset in ("random", "stratified") and v.fraction == 1:
            v = replace(v, subset="full")
        if v.subset == "full":
            v = replace(v, fraction=1.0)
        return v

    def is_main(self, train_profile) -> bool:
        """Whether this is notebook 03's run of its network (the same training, by its canonical form)."""
        return self.canonical(train_profile) == Variant(self.network).canonical(train_profile)

    def name(self, train_profile) -> str:
        """The run name: the network's (notebook 03's run) or ``bx_<network>`` and what differs, e.g.
        ``bx_gradspsa_seed43``, ``bx_gradspsa_no-dense_connections``, ``bx_a2s_stratified60``."""
        if self.is_main(train_profile):
            return self.network
        v = self.canonical(train_profile)
        main = Variant(self.network).canonical(train_profile)
        parts = [f"bx_{v.network}"]
        if v.seed != DEFAULT_SEED:
            parts.append(f"seed{v.seed}")
        if v.ablate:
            parts.append(f"no-{v.ablate}")
        if v.gamma is not None:
            parts.append(f"gamma{v.gamma:g}")
        if v.rule:
            parts.append(f"rule-{v.rule}")
        if v.batch:
            parts.append(f"batch{v.batch}")
        if v.epochs:
            parts.append(f"ep{v.epochs}")
        if (v.subset, v.fraction) != (main.subset, main.fraction):
            parts.append(v.subset if v.subset == "full" else f"{v.subset}{round(100 * v.fraction):g}")
        return "_".join(parts)

    def label(self) -> str:
        """A short human label of what differs (for tables)."""
        bits = []
        if self.seed != DEFAULT_SEED:
            bits.append(f"seed {self.seed}")
        if self.ablate:
            bits.append(f"without {self.ablate.replace('_', ' ')}")
        if self.gamma is not None:
            bits.append(f"γ = {self.gamma:g}")
        if self.rule:
            bits.append(f"rule {self.rule}")
        if self.batch:
            bits.append(f"batch {self.batch}")
        if self.epochs:
            bits.append(f"{self.epochs} epochs")
        if self.subset != "main":
            bits.append(self.subset if self.subset == "full" else f"{self.subset} {round(100 * self.fraction)} %")
        return f"{self.network}" + (f" ({', '.join(bits)})" if bits else "")


@dataclass
class VariantRun:
    """A finished variant: its folder and what its training did."""

    variant: Variant
    name: str
    run_dir: Path
    n_train: int  # training samples used
    epochs_done: int
    best_epoch: int
    best_val_ser: float  # %
    seconds_per_epoch: float  # mean wall seconds of a logged epoch (training + validation)
    train_seconds_per_epoch: float  # mean seconds of the training passes alone (NaN where not measured)
    batch: int


def training_fold(study, fold: int, variant: Variant) -> primus.Fold:
    """The fold a variant trains and selects its epoch on (its ``subset``); its test split is the subset's own."""
    v = variant.canonical(study.profile.train)
    f = study.folds[fold]
    if v.subset == "random":
        return primus.subsample_fold(f, v.fraction, study.profile.corpus.seed)
    if v.subset == "stratified":
        return strata.stratified_subsample_fold(f, v.fraction, study.corpus.tokens, study.profile.corpus.seed)
    return f


def network_config(vocab_size: int, train_profile, variant: Variant):
    """The variant's network hyper-parameters: the profile's (``runs.network_configs``) with its changes."""
    cfg = runs.network_configs(vocab_size, train_profile)[variant.network]
    if variant.network != "gradspsa":
        return cfg
    v = variant.canonical(train_profile)
    if v.gamma is not None:
        cfg = replace(cfg, sharing_gamma=float(v.gamma))
    if v.rule is not None:
        cfg = replace(cfg, sharing_rule=v.rule)
    return gradspsa_a2s.ablate(cfg, v.ablate)


def build(variant: Variant, vocab_size: int, train_profile, omr: crnn.CRNN | None = None) -> torch.nn.Module:
    """A freshly initialised network of the variant (seed torch first), wrapped as ``runs.build_network`` wraps."""
    cfg = network_config(vocab_size, train_profile, variant)
    if variant.network == "gradspsa":
        if omr is None:
            raise ValueError("build: GradSPSA needs the trained OMR network (omr=...)")
        net = gradspsa_a2s.GradSPSAA2S(cfg, omr)
    else:
        net = crnn.CRNN(cfg)
    pool = train_profile.a2s_input_pool
    return runs.PooledInput(net, (pool, pool)) if pool > 1 else net


def _trained_omr(study, fold: int, vocabulary: Vocabulary, progress: bool) -> tuple[crnn.CRNN, str]:
    """The fold's OMR (trained first where missing) and its checkpoint's digest."""
    omr_run = runs.ensure_run(study, fold, "omr", progress=progress)
    saved = Vocabulary.load(omr_run.run_dir / runs.VOCABULARY)
    if saved != vocabulary:
        raise ValueError(f"{omr_run.run_dir} was trained with another vocabulary than fold {fold}'s: retrain the OMR")
    omr = runs.build_network("omr", len(vocabulary), study.profile.train)
    load_weights(omr, omr_run.run_dir / "best.pt")
    return omr.eval(), io.sha256_file(omr_run.run_dir / "best.pt")[:16]


def _variant_run(variant: Variant, name: str, run_dir: Path, info: dict) -> VariantRun:
    history = info.get("history", [])
    seconds = [float(r["seconds"]) for r in history]
    train_seconds = info.get("train_seconds_per_epoch") or []
    return VariantRun(variant, name, run_dir, int(info["n_train"]), int(info["epochs_done"]), int(info["best_epoch"]),
                      float(info["best_val_ser"]), sum(seconds) / len(seconds) if seconds else float("nan"),
                      sum(train_seconds) / len(train_seconds) if train_seconds else float("nan"),
                      int(info["batch"]))


def ensure_variant(study, fold: int, variant: Variant, progress: bool = True) -> VariantRun:
    """The variant trained where it is missing (or unfinished), with val/test posteriors of the whole folds.

    Raises
    ------
    ValueError
        The folder holds a training of another network, vocabulary or OMR (delete it to retrain), or no training
        sample is left.
    """
    P = study.profile
    tp = P.train
    name = variant.name(tp)
    if variant.is_main(tp):
        run = runs.ensure_run(study, fold, variant.network, progress=progress)
        info = io.read_json(run.run_dir / runs.RUN_INFO)
        timings = []  # run.json keeps the last epoch's step time only: seconds per step x steps per epoch
        per_step = info.get("timing", {}).get("train_seconds_per_step")
        if per_step is not None:
            steps = -(-run.n_train // int(info["timing"]["batch"]))
            timings = [per_step * min(steps, tp.max_train_batches or steps)]
        record = {"n_train": run.n_train, "epochs_done": run.result.epochs_done, "best_epoch": run.result.best_epoch,
                  "best_val_ser": run.best_val_ser, "history": run.result.history,
                  "train_seconds_per_epoch": timings,
                  "batch": {"a2s": tp.a2s_batch, "gradspsa": tp.gradspsa_batch}[variant.network]}
        return _variant_run(variant, name, run.run_dir, record)

    v = variant.canonical(tp)
    vocabulary = runs.fold_vocabulary(study, fold)
    run_dir = study.model_dir(fold, name)
    omr, omr_digest = _trained_omr(study, fold, vocabulary, progress) if v.network == "gradspsa" else (None, None)
    described = {"variant": asdict(v), "network_config": asdict(network_config(len(vocabulary), tp, v)),
                 "input_pool": tp.a2s_input_pool, "omr_checkpoint": omr_digest, "vocabulary": list(vocabulary.symbols)}
    described = _plain(described)
    info_path = run_dir / INFO
    if info_path.exists():
        previous = io.read_json(info_path)
        for key, value in described.items():
            if previous.get(key) != value:
                raise ValueError(f"{run_dir} holds a training with another {key} (the corpus, the OMR or the profile "
                                 "changed?); delete the folder to retrain")
        finished = "posteriors_epoch" in previous and previous.get("epochs_done") == previous.get("epochs")
        if finished and previous["posteriors_epoch"] == previous.get("best_epoch") and all(
                ctc_tasks.posteriors_path(run_dir, s).exists() for s in runs.SPLITS):
            return _variant_run(variant, name, run_dir, previous)

    cache = study.cache()
    f = study.folds[fold]
    sub = training_fold(study, fold, v)
    modality = _MODALITY[v.network]
    train_set = PrimusDataset(cache, list(sub.train), vocabulary, modality)
    val_set = PrimusDataset(cache, list(sub.val), vocabulary, modality, drop_unknown=True)
    splits = {s: PrimusDataset(cache, list(getattr(f, s)), vocabulary, modality, drop_unknown=True)
              for s in runs.SPLITS}
    overrides = {"progress": progress, "eval_batch_size": tp.eval_batch, "seed": v.seed}
    if v.batch:
        overrides["batch_size"] = v.batch
    if v.epochs:
        overrides["epochs"] = v.epochs
    config = ctc_tasks.train_config(tp, v.network, **overrides)
    torch.manual_seed(config.seed)  # the initialisation is part of the run's seeded state (as runs.train_network)
    model = build(v, len(vocabulary), tp, omr)

    left_out = dict(train_set.left_out)
    if tp.max_train_audio_width is not None:  # the profile's over-long audio, left out as runs.train_network does
        too_long = {sid: f"CQT of {w} columns is wider than TrainProfile.max_train_audio_width"
                    for sid, w in zip(train_set.ids, train_set.widths("audio")) if w > tp.max_train_audio_width}
        kept = copy.copy(train_set)
        kept.ids = [sid for sid in train_set.ids if sid not in too_long]
        train_set = kept
        left_out.update(too_long)
    train_set, infeasible = ctc_tasks.filter_feasible(train_set, model.output_lengths, "audio")
    left_out.update(infeasible)
    if len(train_set) == 0:
        raise ValueError(f"{name} of fold {fold}: every training sample was left out ({len(left_out)})")
    if not info_path.exists():
        io.write_json(info_path, {**described, "name": name})

    task = _TASKS[v.network](vocabulary)
    result = train(model, task, train_set, val_set, run_dir, config)
    previous = io.read_json(info_path)
    train_seconds = list(previous.get("train_seconds_per_epoch", []))
    train_seconds += [float(t["train_seconds"]) for t in result.timings]
    if previous.get("posteriors_epoch") != result.best_epoch or not all(
            ctc_tasks.posteriors_path(run_dir, s).exists() for s in runs.SPLITS):
        ctc_tasks.export_posteriors(run_dir, model, task, splits, device=config.device)
    info = {**described, "name": name, "label": variant.label(), "n_train": len(train_set),
            "n_val": len(val_set), "left_out": left_out, "epochs": config.epochs, "batch": config.batch_size,
            "best_epoch": result.best_epoch, "best_val_ser": result.best_value, "epochs_done": result.epochs_done,
            "posteriors_epoch": result.best_epoch, "history": result.history,
            "train_seconds_per_epoch": train_seconds, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    io.write_json(info_path, info)  # last: a variant.json with posteriors_epoch means the folder is complete
    return _variant_run(variant, name, run_dir, info)


def _plain(obj):
    """``obj`` as JSON would give it back (tuples as lists), so that stored and fresh descriptions compare."""
    return json.loads(json.dumps(obj))


def ensure_variants(study, fold: int, variants: Iterable[Variant], progress: bool = True,
                    concurrency: int | None = None) -> dict[str, VariantRun]:
    """:func:`ensure_variant` for each variant, each distinct training once: ``{run name: VariantRun}`` in the
    order given.

    ``concurrency`` trainings run at a time, each in its own process (:func:`mtlnb.core.scheduler.run_jobs`; on
    the CPU each gets ``cores // concurrency`` torch threads, and a training gives the same weights alone or beside
    others); default the profile's ``TrainProfile.concurrent_trainings``.  What every training reads is settled
    first, in this process: the folds, the feature cache, notebook 03's runs (the variants equal to them) and,
    where a GradSPSA variant is listed, the fold's OMR -- so no two workers train or write the same folder.
    Progress bars only with one training at a time (several processes would garble them).
    """
    tp = study.profile.train
    distinct: dict[str, Variant] = {}
    for v in variants:
        distinct.setdefault(v.name(tp), v)
    concurrency = concurrency or tp.concurrent_trainings
    if concurrency < 1:
        raise ValueError(f"ensure_variants: concurrency must be >= 1, got {concurrency}")
    out: dict[str, VariantRun] = {}
    if concurrency > 1:  # what the workers read, made here first (run_jobs settles the folds and feature cache)
        if any(v.network == "gradspsa" for v in distinct.values()):
            runs.ensure_run(study, fold, "omr", progress=progress)
        for name, v in distinct.items():
            if v.is_main(tp):
                out[name] = ensure_variant(study, fold, v, progress)
    jobs = [scheduler.Job(name, ensure_variant, (study, fold, v), {"progress": progress and concurrency == 1})
            for name, v in distinct.items() if name not in out]
    out.update(runs.run_jobs(study, jobs, concurrency))
    return {name: out[name] for name in distinct}
