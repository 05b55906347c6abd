"""Train the GradSPSA study's CTC networks for a profile, and read back what they learned (notebooks 02 and 03).

What is trained, per fold (the thesis, and the late-fusion baseline of Alfaro-Contreras et al. 2023):

=================  ===========================================  ===============================================
run name           network, training set                        function
=================  ===========================================  ===============================================
``omr``            DNN_OMR on the whole training fold           :func:`train_omr`
``omr_s1``…``s9``  DNN_OMR on a random p % of the training      :func:`train_scenario_omrs`
                   fold, p = :data:`SCENARIO_PERCENTS`
``omr_at<v>``      DNN_OMR's weights at the first epoch of      :func:`omr_level_run`
                   ``omr``'s training whose validation SER
                   reached v % (mini's scenario OMR levels)
``a2s``            baseline DNN_A2S on the whole training fold  :func:`train_a2s`
``gradspsa``       GradSPSA's DNN_A2S on the training pairs,    :func:`train_gradspsa`
                   reading the fold's trained ``omr``
=================  ===========================================  ===============================================

Each run lives in ``study.model_dir(fold, name)`` (``data/primus-<profile>/models/fold<k>/<name>/``)::

    log.csv  last.pt  best.pt                     the training loop's files (mtlnb.core.training)
    vocabulary.json                               the fold's training vocabulary
                                                  (mtlnb.camera_primus.corpus.datasets.Vocabulary)
    posteriors_val.npz  posteriors_test.npz       log-posteriors of best.pt, read by the word-graph stage
                                                  (format: mtlnb.camera_primus.networks.ctc_tasks)
    run.json                                      what was trained on: sizes, left-out samples and why, the
                                                  network's hyper-parameters, the epoch the posteriors come from

Everything resumes: a finished run returns at once (the loop sees ``last.pt``), and the posteriors are written
again only when ``best.pt`` changed since they were.

Training happens here only.  :func:`ensure_run` (and :func:`ensure_runs`) makes any run of the table by its name,
with what it needs first (``gradspsa`` and ``omr_at<v>`` train ``omr``), where it is missing; notebooks 02-05 and
the reproduce driver call it before the stages that read runs (word graphs, fusion, scenarios), which never train
and name the missing run and its maker (:func:`run_maker`) instead.

Choices where the papers are silent
-----------------------------------
- **One vocabulary per fold**, from the whole training fold, for every network of the fold (the scenario OMRs
  included): the baseline shares it between modalities, and the fusion stage needs OMR and A2S posteriors over the
  same columns.  Validation and test samples keep tokens outside it in their references (they count as errors)
  and drop them from their CTC labels.
- **Scenario subsets** are drawn with :func:`mtlnb.camera_primus.corpus.primus.scenario_subset`
  (``int(n · p / 100)`` ids), seeded by ``corpus seed + s`` for scenario ``s``; when the study runs on the
  baseline's own folds and the reference holds ``Scenario<s>/train_gt_fold<k>.dat``, that list is used instead.
  Folds so small that p % is less than one batch (only smoke-size corpora) get one OMR batch of samples, so that
  the plumbing still trains.
- **Network sizes** come from the profile (:class:`mtlnb.profiles.TrainProfile`: ``lstm_units``, ``omr_filters``,
  ``omr_pools``, ``a2s_pools``, ``a2s_input_pool``): the papers' sizes in ``paper``, smaller networks of the same
  shape in ``mini`` and ``smoke`` so that 2 CPU cores train them in minutes (see :func:`network_configs` and
  :class:`PooledInput`).
- **Over-long audio**: A2S and GradSPSA training leave out pairs whose CQT is wider than
  ``TrainProfile.max_train_audio_width`` (``None``, the baseline's choice, keeps all).  Synthetic incipits with
  long multi-rests render minutes of silence (one mini pair has 166,845 CQT columns, 9 % of all the fold's audio).
- CTC-infeasible training samples are left out and counted
  (:func:`mtlnb.camera_primus.networks.ctc_tasks.filter_feasible`).
- **GradSPSA's subset** (``TrainProfile.gradspsa_subset_fraction``; the thesis's 60 %, its Table 1): GradSPSA trains
  on that random share of the fold's training set and selects its epoch on that share of the validation set
  (:func:`mtlnb.camera_primus.corpus.primus.subsample_fold`, seeded by the corpus seed and the fold), while OMR
  and A2S keep the full folds.  Its posteriors are exported for the full validation and test folds, a superset of
  the subset's, so that late fusion and the scenarios read the same samples for every network; ``run.json`` lists
  the subset's sizes.

Several trainings at once
-------------------------
:func:`ensure_runs_concurrently` (and through it :func:`ensure_runs`, :func:`train_scenario_omrs` and
:func:`ensure_scenario_runs`) runs ``TrainProfile.concurrent_trainings`` trainings at a time in processes sharing
the device (:mod:`mtlnb.core.scheduler`); a GradSPSA or ``omr_at<v>`` run waits for its fold's ``omr``.  Each run
is the same training whether it runs alone or beside others.

Dry runs
--------
Under a profile with ``dry_run`` (``paper-dry``), every training also writes its measured step times
(``run.json["timing"]``) and the memory estimate of its network at the profile's batch
(:func:`mtlnb.camera_primus.networks.budget.memory_check`, ``run.json["memory"]``, printed); the budget module
projects the real run from them.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from mtlnb.camera_primus.networks import ctc_tasks
from mtlnb.core import io
from mtlnb.camera_primus import metrics
from mtlnb.camera_primus.corpus import primus
from mtlnb.camera_primus.corpus.datasets import PrimusDataset, Vocabulary
from mtlnb.camera_primus.networks import crnn, gradspsa_a2s as gradspsa
from mtlnb.core import scheduler
from mtlnb.core.paths import reference_root
from mtlnb.profiles import TrainProfile
from mtlnb.core.training import TrainResult, load_weights, snapshot_path, train

# OMR training subsets of the nine scenarios, in % of the training fold (the baseline's code and the thesis §4):
# scenarios 1-3 give a weak OMR, 4-6 a medium and 7-9 a strong one.
SCENARIO_PERCENTS: tuple[float, ...] = (2.5, 2.2, 2.0, 4.0, 3.7, 3.0, 10.5, 9.0, 6.3)
SCENARIO_NAMES: tuple[str, ...] = tuple(f"omr_s{s}" for s in range(1, len(SCENARIO_PERCENTS) + 1))
NETWORKS = ctc_tasks.NETWORKS  # "omr", "a2s", "gradspsa"
SPLITS = ("val", "test")  # whose posteriors are exported after training
RUN_INFO = "run.json"
VOCABULARY = "vocabulary.json"
_MODALITY = {"omr": "image", "a2s": "audio", "gradspsa": "both"}
_INPUT = {"omr": "image", "a2s": "audio", "gradspsa": "audio"}
_TASKS = {"omr": ctc_tasks.omr_task, "a2s": ctc_tasks.a2s_task, "gradspsa": ctc_tasks.gradspsa_task}


@dataclass
class CTCRun:
    """One finished training of a fold: its folder, log, what it was trained on and its posteriors."""

    name: str  # run name: "omr", "omr_s1".."omr_s9", "a2s", "gradspsa"
    fold: int
    network: str  # "omr", "a2s" or "gradspsa"
    run_dir: Path
    result: TrainResult  # the training loop's summary (best epoch, validation SER, log rows)
    n_train: int  # training samples used
    left_out: dict[str, str] = field(default_factory=dict)  # training samples left out -> why
    posteriors: dict[str, Path] = field(default_factory=dict)  # split -> posteriors file of best.pt

    @property
    def best_val_ser(self) -> float:
        """Validation SER (%) of ``best.pt``."""
        return self.result.best_value

    @property
    def train_seconds(self) -> float:
        """Wall seconds of all logged epochs (training + validation), over every call that trained this run."""
        return float(sum(row["seconds"] for row in self.result.history))


# -- networks -------------------------------------------------------------------------------------------------------

class PooledInput(nn.Module):
    """A CTC network that reads its first input average-pooled by ``pool`` = (rows, columns): the cheaper A2S
    front end of the small profiles (``TrainProfile.a2s_input_pool``).

    The A2S input is the 120-bin CQT resized to 256 rows, which also stretches time by 256/120 (the baseline's
    resize), so pooling it by 2 in both axes keeps almost all of its information, while the first conv block --
    one input channel at full resolution, most of the A2S networks' CPU time -- costs a quarter.

    Shapes: ``(B, 1, H, W)`` → ``net((B, 1, H // rows, W // columns), *rest)``;
    ``output_lengths(W) = net.output_lengths(W // columns)``.  Other arguments (GradSPSA's image) pass unchanged.
    """

    def __init__(self, net: nn.Module, pool: tuple[int, int]):
        super().__init__()
        if len(pool) != 2 or min(pool) < 1:
            raise ValueError(f"PooledInput: pool must be two factors >= 1, got {pool}")
        self.net = net
        self.pool = tuple(int(p) for p in pool)

    def forward(self, x: torch.Tensor, *rest) -> torch.Tensor:
        return self.net(F.avg_pool2d(x, self.pool), *rest)

    def output_lengths(self, widths):
        """CTC frames for unpadded input widths (int, array or tensor)."""
        if isinstance(widths, (int, np.integer)):
            return self.net.output_lengths(int(widths) // self.pool[1])
        return self.net.output_lengths(torch.div(torch.as_tensor(widths), self.pool[1], rounding_mode="floor"))

    def sharing_loss(self) -> torch.Tensor:
        """GradSPSA's sharing loss of the wrapped network."""
        return self.net.sharing_loss()


def network_configs(vocab_size: int, train_profile: TrainProfile) -> dict:
    """Hyper-parameters of the three networks for a vocabulary and a profile.

    Parameters
    ----------
    vocab_size : int
        |V| (the networks output |V| + 1 classes, blank last).
    train_profile : TrainProfile
        ``profile.train``.  ``paper`` gives the papers' networks unchanged; the other profiles may set
        ``lstm_units`` (every BiLSTM), ``omr_filters`` (OMR conv channels), ``omr_pools`` and ``a2s_pools``
        (the (h, w) max-pool of each conv block; their width factors set the CTC frame rate, their height
        factors the features per column).  GradSPSA's A2S takes ``a2s_pools`` for its first two blocks and keeps
        the thesis's third block (pool (1, 2)).  ``a2s_input_pool`` > 1 divides both A2S networks' input height
        (:class:`PooledInput` wraps them in :func:`build_network`).

    Returns
    -------
    dict
        ``{"omr": CRNNConfig, "a2s": CRNNConfig, "gradspsa": GradSPSAConfig}``; ``ValueError`` (from the configs)
        when the pools do not fit the input heights or the number of blocks.
    """
    if vocab_size < 1:
        raise ValueError(f"network_configs: vocab_size must be >= 1, got {vocab_size}")
    tp = train_profile
    if tp.a2s_input_pool < 1:
        raise ValueError(f"network_configs: TrainProfile.a2s_input_pool must be >= 1, got {tp.a2s_input_pool}")
    omr = replace(crnn.omr_config(vocab_size), filters=tuple(tp.omr_filters), pools=tuple(tp.omr_pools),
                  lstm_units=tp.lstm_units)
    a2s = crnn.a2s_config(vocab_size)
    a2s_height = a2s.input_height // tp.a2s_input_pool
    a2s = replace(a2s, input_height=a2s_height, pools=tuple(tp.a2s_pools), lstm_units=tp.lstm_units)
    grad = gradspsa.GradSPSAConfig(vocab_size)
    grad = replace(grad, input_height=a2s_height, pools=(*tp.a2s_pools, *grad.pools[len(tp.a2s_pools):]),
                   lstm_units=tp.lstm_units)
    return {"omr": omr, "a2s": a2s, "gradspsa": grad}


def build_network(network: str, vocab_size: int, train_profile: TrainProfile,
                  omr: crnn.CRNN | None = None) -> torch.nn.Module:
    """A freshly initialised network (seed torch first for a reproducible initialisation).

    ``network`` is "omr", "a2s" or "gradspsa"; GradSPSA needs the trained ``omr`` (it keeps a frozen copy).
    """
    if network not in NETWORKS:
        raise ValueError(f"build_network: network must be one of {NETWORKS}, got {network!r}")
    cfg = network_configs(vocab_size, train_profile)[network]
    if network == "gradspsa":
        if omr is None:
            raise ValueError("build_network: GradSPSA needs the trained OMR network (omr=...)")
        net = gradspsa.GradSPSAA2S(cfg, omr)
    else:
        net = crnn.CRNN(cfg)
    pool = train_profile.a2s_input_pool
    return PooledInput(net, (pool, pool)) if network != "omr" and pool > 1 else net


# -- data -----------------------------------------------------------------------------------------------------------

def _fold(study, fold: int) -> primus.Fold:
    folds = study.folds
    if not 0 <= fold < len(folds):
        raise ValueError(f"fold {fold} does not exist: the study has folds 0..{len(folds) - 1}")
    return folds[fold]


def fold_vocabulary(study, fold: int) -> Vocabulary:
    """The sorted symbols of the fold's training set (cached samples only): every network of the fold uses it."""
    cache = study.cache()
    have = set(cache.ids)
    return Vocabulary.from_sequences(study.corpus.tokens(sid) for sid in _fold(study, fold).train if sid in have)


def scenario_ids(study, fold: int, scenario: int, percent: float | None = None) -> list[str]:
    """Training ids of scenario ``scenario`` (1..9) of a fold: a random ``SCENARIO_PERCENTS[s-1]`` % of its
    training set (the baseline's own list when the study uses the baseline's folds; module docstring).

    ``percent`` replaces ``SCENARIO_PERCENTS[s-1]`` (a calibrated size,
    :mod:`mtlnb.camera_primus.evaluation.scenarios`); the draw keeps the scenario's seed, and the baseline's lists
    are not used then."""
    if not 1 <= scenario <= len(SCENARIO_PERCENTS):
        raise ValueError(f"scenario must be in 1..{len(SCENARIO_PERCENTS)}, got {scenario}")
    if percent is not None and not 0 < percent <= 100:
        raise ValueError(f"scenario_ids: percent must be in (0, 100], got {percent}")
    train_ids = _fold(study, fold).train
    ref = reference_root()
    listed = ref / "primus" / "folds" / f"Scenario{scenario}" / f"train_gt_fold{fold}.dat" if ref else None
    if (percent is None and getattr(study, "folds_source", None) == "baseline" and listed is not None
            and listed.is_file()):
        return primus.read_id_list(listed)
    percent = SCENARIO_PERCENTS[scenario - 1] if percent is None else float(percent)
    seed = study.profile.corpus.seed + scenario
    minimum = study.profile.train.omr_batch
    if int(len(train_ids) * percent / 100) < minimum:  # smoke-size folds only
        percent = min(100.0, 100.0 * (minimum + 0.5) / len(train_ids))
    return primus.scenario_subset(train_ids, percent, seed)


def _without(dataset: PrimusDataset, reasons: Mapping[str, str]) -> PrimusDataset:
    """``dataset`` without the ids in ``reasons`` (recorded in its ``left_out``), as filter_feasible does."""
    kept = copy.copy(dataset)
    kept.ids = [sid for sid in dataset.ids if sid not in reasons]
    kept.left_out = {**dataset.left_out, **reasons}
    return kept


def _too_long(dataset: PrimusDataset, max_width: int | None) -> dict[str, str]:
    if max_width is None:
        return {}
    return {sid: f"CQT of {w} columns is wider than TrainProfile.max_train_audio_width = {max_width}"
            for sid, w in zip(dataset.ids, dataset.widths("audio")) if w > max_width}


# -- training -------------------------------------------------------------------------------------------------------

def _load_omr(study, fold: int, vocabulary: Vocabulary) -> crnn.CRNN:
    run_dir = study.model_dir(fold, "omr")
    best = run_dir / "best.pt"
    if not best.exists():
        raise ValueError(f"GradSPSA reads the fold's trained OMR, but {best} does not exist: run "
                         f"train_omr(study, {fold}) first")
    saved = Vocabulary.load(run_dir / VOCABULARY)
    if saved != vocabulary:
        raise ValueError(f"{run_dir / VOCABULARY} differs from fold {fold}'s training vocabulary: retrain the OMR")
    omr = build_network("omr", len(vocabulary), study.profile.train)
    load_weights(omr, best)
    return omr.eval()


@dataclass
class TrainedNetwork:
    """A run's network read back for inference (:func:`load_network`)."""

    network: str  # "omr" or "a2s"
    model: torch.nn.Module  # in eval mode, on the CPU
    vocabulary: Vocabulary  # the run's symbols; the blank is len(vocabulary)
    epoch: int  # the training epoch the checkpoint holds
    checkpoint: Path


def load_network(run_dir: str | os.PathLike, train_profile: TrainProfile, checkpoint: str = "best.pt"
                 ) -> TrainedNetwork:
    """The OMR or A2S network of a run folder (any folder :func:`train_network` wrote), ready to transcribe.

    Parameters
    ----------
    run_dir : path
        Holds ``vocabulary.json``, ``run.json`` (its ``network``, and the ``network_config`` / ``input_pool`` that
        are checked against the profile's) and the checkpoint.
    train_profile : TrainProfile
        The profile the run was trained with: it sizes the network (:func:`build_network`).
    checkpoint : str
        ``"best.pt"`` (the lowest validation SER), ``"last.pt"`` or a snapshot's file name.

    Raises
    ------
    ValueError
        A missing file, a GradSPSA run (it also reads the score image: transcribe it through the fusion stage), or
        a profile whose network sizes differ from the run's.
    """
    run_dir = Path(run_dir)
    path = run_dir / checkpoint
    for needed in (path, run_dir / VOCABULARY, run_dir / RUN_INFO):
        if not needed.is_file():
            raise ValueError(f"{run_dir} is not a finished training run: {needed.name} is missing")
    info = io.read_json(run_dir / RUN_INFO)
    network = info.get("network", "omr")
    if network not in ("omr", "a2s"):
        raise ValueError(f"load_network reads OMR and A2S runs; {run_dir} holds a {network!r} network")
    vocabulary = Vocabulary.load(run_dir / VOCABULARY)
    described = _describe(network, len(vocabulary), train_profile)
    for key, value in described.items():
        if key in info and _stored(info, key, value) != value:
            raise ValueError(f"{run_dir} holds a network with other {key} than this profile's ({info[key]} vs "
                             f"{value}): pass the profile it was trained with")
    model = build_network(network, len(vocabulary), train_profile)
    state = torch.load(path, map_location="cpu", weights_only=True)  # read once: weights and epoch
    model.load_state_dict(state["model"])
    return TrainedNetwork(network, model.eval(), vocabulary, int(state.get("epoch", -1)), path)


def _stored(info: dict, key: str, current):
    """``info[key]`` as today's code would describe it: a stored ``network_config`` gains the fields added to the
    config classes since it was written, at their defaults (a field the old code did not have means the old
    behaviour, which every new field's default keeps), so that older runs stay readable."""
    stored = info[key]
    if key != "network_config" or not isinstance(stored, dict) or not isinstance(current, dict):
        return stored
    defaults = {f.name: f.default for cls in (crnn.CRNNConfig, gradspsa.GradSPSAConfig) for f in fields(cls)
                if f.default is not MISSING}
    return {**{k: defaults[k] for k in current if k not in stored and k in defaults}, **stored}


def _describe(network: str, vocab_size: int, train_profile: TrainProfile) -> dict:
    """The network's hyper-parameters as run.json stores them (JSON types)."""
    config = asdict(network_configs(vocab_size, train_profile)[network])
    pool = 1 if network == "omr" else train_profile.a2s_input_pool
    return json.loads(json.dumps({"network_config": config, "input_pool": pool}))


def _check_run_folder(run_dir: Path, vocabulary: Vocabulary, described: dict) -> None:
    """``ValueError`` if ``run_dir`` holds a run of another vocabulary or network (a corpus or profile changed):
    resuming it would load weights of another shape, or silently mix two set-ups."""
    vocab_path = run_dir / VOCABULARY
    if vocab_path.exists() and Vocabulary.load(vocab_path) != vocabulary:
        raise ValueError(f"{run_dir} was trained with another vocabulary than the fold's current one (the corpus "
                         "changed?); delete the folder to retrain")
    info_path = run_dir / RUN_INFO
    if info_path.exists():
        info = io.read_json(info_path)
        for key, value in described.items():
            if key in info and _stored(info, key, value) != value:
                raise ValueError(f"{run_dir} holds a network with other {key} than the profile's: "
                                 f"{info[key]} vs {value}; delete the folder to retrain")


def _posteriors_current(run_dir: Path, result: TrainResult) -> bool:
    info_path = run_dir / RUN_INFO
    if not info_path.exists():
        return False
    info = io.read_json(info_path)
    return (info.get("posteriors_epoch") == result.best_epoch
            and all(ctc_tasks.posteriors_path(run_dir, s).exists() for s in SPLITS))


def _eval_splits(study, fold: int, vocabulary: Vocabulary, modality: str) -> dict[str, PrimusDataset]:
    f, cache = _fold(study, fold), study.cache()
    return {"val": PrimusDataset(cache, list(f.val), vocabulary, modality, drop_unknown=True),
            "test": PrimusDataset(cache, list(f.test), vocabulary, modality, drop_unknown=True)}


def train_network(study, fold: int, network: str, name: str | None = None, train_ids: Sequence[str] | None = None,
                  epochs: int | None = None, progress: bool = True) -> CTCRun:
    """Train one network of a fold (or finish/return a trained one) and export its val/test posteriors.

    Parameters
    ----------
    study : mtlnb.camera_primus.study.PrimusStudy
        The profile's corpus, cache and folds (:func:`mtlnb.camera_primus.study.primus_study`).
    fold : int
        Fold index.
    network : {"omr", "a2s", "gradspsa"}
    name : str, optional
        Run name (folder under ``models/fold<k>/``); default ``network``.
    train_ids : sequence of str, optional
        Training samples; default the whole training fold.
    epochs : int, optional
        Default: the profile's epochs for the network (``scenario_omr_epochs`` for names ``omr_s*``).
    progress : bool
        tqdm bars and a line per epoch.

    Returns
    -------
    CTCRun
    """
    if network not in NETWORKS:
        raise ValueError(f"train_network: network must be one of {NETWORKS}, got {network!r}")
    name = name or network
    P = study.profile
    f = _fold(study, fold)
    cache = study.cache()
    vocabulary = fold_vocabulary(study, fold)
    run_dir = study.model_dir(fold, name)
    described = _describe(network, len(vocabulary), P.train)
    omr_best = study.model_dir(fold, "omr") / "best.pt"
    if network == "gradspsa" and omr_best.exists():  # it reads the OMR's features: after the OMR is retrained,
        described["omr_checkpoint"] = io.sha256_file(omr_best)[:16]  # its checkpoints belong to another model
    fraction = P.train.gradspsa_subset_fraction if network == "gradspsa" else 1.0
    if network == "gradspsa":  # the thesis's GradSPSA subset (module docstring); a folder of another one is refused
        described["subset_fraction"] = fraction
        f = primus.subsample_fold(f, fraction, P.corpus.seed)
    _check_run_folder(run_dir, vocabulary, described)
    vocabulary.save(run_dir / VOCABULARY)
    if not (run_dir / RUN_INFO).exists():
        io.write_json(run_dir / RUN_INFO, {"name": name, "fold": fold, "network": network, "profile": P.name,
                                           **described})

    modality = _MODALITY[network]
    train_set = PrimusDataset(cache, list(train_ids) if train_ids is not None else list(f.train), vocabulary,
                              modality)
    splits = _eval_splits(study, fold, vocabulary, modality)  # the full folds: what the posteriors cover
    val_set = splits["val"]
    if fraction < 1:  # epoch selection on the subset's validation share
        val_set = PrimusDataset(cache, list(f.val), vocabulary, modality, drop_unknown=True)

    default_epochs = P.train.scenario_omr_epochs if name.startswith("omr_s") else None
    overrides = {"progress": progress, "eval_batch_size": P.train.eval_batch}
    if name == "omr" and P.train.omr_snapshot_levels:  # the weaker OMRs of mini's scenarios (omr_level_run)
        overrides["snapshots_at"] = tuple(float(v) for v in P.train.omr_snapshot_levels)
    if epochs or default_epochs:
        overrides["epochs"] = epochs or default_epochs
    config = ctc_tasks.train_config(P.train, network, **overrides)

    omr = _load_omr(study, fold, vocabulary) if network == "gradspsa" else None
    torch.manual_seed(config.seed)  # the initialisation is part of the run's seeded state
    model = build_network(network, len(vocabulary), P.train, omr)

    left_out = dict(train_set.left_out)
    if network != "omr":
        too_long = _too_long(train_set, P.train.max_train_audio_width)
        train_set = _without(train_set, too_long)
        left_out.update(too_long)
    train_set, infeasible = ctc_tasks.filter_feasible(train_set, model.output_lengths, _INPUT[network])
    left_out.update(infeasible)
    if len(train_set) == 0:
        raise ValueError(f"{name} of fold {fold}: every training sample was left out ({len(left_out)})")

    task = _TASKS[network](vocabulary)
    result = train(model, task, train_set, val_set, run_dir, config)

    previous = io.read_json(run_dir / RUN_INFO)
    timing = dict(previous.get("timing", {}))
    if not _posteriors_current(run_dir, result):
        t0 = time.perf_counter()
        ctc_tasks.export_posteriors(run_dir, model, task, splits, device=config.device)
        n = sum(len(ds) for ds in splits.values())
        timing["posterior_seconds_per_sample"] = (time.perf_counter() - t0) / max(1, n)
    if result.timings:  # this call trained: its last epoch's step times, and the widths they were taken at
        last = result.timings[-1]
        eval_batch = config.eval_batch_size or config.batch_size
        timing.update(train_seconds_per_step=last["train_seconds"] / max(1, last["train_steps"]),
                      val_seconds_per_batch=last["val_seconds"] / max(1, last["val_batches"]),
                      batch=config.batch_size, eval_batch=eval_batch,
                      **_batch_shape("train", task, train_set, config.batch_size, config.seed, last["epoch"] - 1,
                                     config.max_batches_per_epoch),
                      **_batch_shape("val", task, val_set, eval_batch, config.seed, 0, None),
                      posterior_width=float(np.mean([w for ds in splits.values()
                                                     for w in ds.widths(task.input_key)])))
    info = {
        "name": name, "fold": fold, "network": network, "profile": P.name,
        "n_train": len(train_set), "n_val": len(splits["val"]), "n_test": len(splits["test"]),
        "vocabulary_size": len(vocabulary), "left_out": left_out, **described,
        "best_epoch": result.best_epoch, "best_val_ser": result.best_value, "epochs_done": result.epochs_done,
        "posteriors_epoch": result.best_epoch,
    }
    if fraction < 1:
        info["subset"] = {"fraction": fraction, "n_train": len(train_set), "n_val": len(val_set),
                          "n_test": len(f.test)}
    if timing:
        info["timing"] = timing
    if P.dry_run:
        info["memory"] = previous.get("memory") or _dry_run_memory(network, model, train_set, config.batch_size,
                                                                    vocabulary, name, fold)
    io.write_json(run_dir / RUN_INFO, info)
    return CTCRun(name, fold, network, run_dir, result, len(train_set), left_out,
                  {s: ctc_tasks.posteriors_path(run_dir, s) for s in SPLITS})


def _batch_shape(prefix: str, task, dataset: PrimusDataset, batch: int, seed: int, epoch: int,
                 max_batches: int | None) -> dict[str, float]:
    """``{<prefix>_width, <prefix>_samples}``: mean padded input width (columns of ``task.input_key``) and mean
    samples of the batches the training loop drew in ``epoch`` (the task's sampler is deterministic given seed and
    epoch): what a measured step time is per (a short last batch may be the one a dry run trained on)."""
    sampler = task.batch_sampler(dataset, batch, seed)
    sampler.set_epoch(epoch)
    widths = dataset.widths(task.input_key)
    batches = list(sampler)[:max_batches] if max_batches else list(sampler)
    return {f"{prefix}_width": float(np.mean([max(widths[i] for i in b) for b in batches])),
            f"{prefix}_samples": float(np.mean([len(b) for b in batches]))}


def _dry_run_memory(network: str, model: nn.Module, train_set: PrimusDataset, batch: int, vocabulary: Vocabulary,
                    name: str, fold: int) -> dict:
    """A dry run's memory check of one training (:func:`mtlnb.camera_primus.networks.budget.memory_check`) at the
    widest training sample's width, printed; returns the record for ``run.json``."""
    from mtlnb.camera_primus.networks import budget

    keys = {"omr": ("image",), "a2s": ("audio",), "gradspsa": ("image", "audio")}[network]
    widest = {key: max(int(w) for w in train_set.widths(key)) for key in keys}
    check = budget.memory_check(model, _TASKS[network](vocabulary), batch, widest)
    print(f"dry run, {name} of fold {fold}: {check.summary()}", flush=True)
    return check.as_dict()


def train_omr(study, fold: int, ids: Sequence[str] | None = None, name: str = "omr", epochs: int | None = None,
              progress: bool = True) -> CTCRun:
    """DNN_OMR of a fold on ``ids`` (default: the whole training fold); see :func:`train_network`."""
    return train_network(study, fold, "omr", name, ids, epochs, progress)


def train_scenario_omrs(study, fold: int, scenarios: Iterable[int] | None = None, epochs: int | None = None,
                        progress: bool = True) -> dict[str, CTCRun]:
    """The scenario OMRs ``omr_s1``…``omr_s9`` of a fold (or the listed ``scenarios``), each on its
    :func:`scenario_ids`; returns ``{name: CTCRun}``."""
    scenarios = list(scenarios) if scenarios is not None else list(range(1, len(SCENARIO_PERCENTS) + 1))
    names = [SCENARIO_NAMES[s - 1] for s in scenarios]
    jobs = [scheduler.Job(name, train_omr, (study, fold, scenario_ids(study, fold, s), name, epochs),
                          {"progress": progress and _concurrency(study) == 1})
            for s, name in zip(scenarios, names)]
    return run_jobs(study, jobs)


def omr_level_name(target: float) -> str:
    """Run name of the OMR taken from ``omr``'s training at validation SER ``target`` %: ``omr_at<target>``."""
    return f"omr_at{float(target):g}"


def omr_level_run(study, fold: int, target: float) -> CTCRun:
    """A weaker OMR of the fold without another training: the weights of the first epoch of ``omr``'s training
    whose validation SER reached ``target`` % (saved there because the profile's
    ``TrainProfile.omr_snapshot_levels`` lists it), with their posteriors, in the run folder
    :func:`omr_level_name` (mini's scenario OMR levels, :mod:`mtlnb.camera_primus.evaluation.scenarios`).

    Where the finished training never reached ``target``, its best epoch stands in, and ``run.json`` says so
    (``"reached": false``).  The folder is rebuilt when ``omr`` was retrained (``"source_checkpoint"``).

    Raises
    ------
    ValueError
        ``omr`` is not trained, not finished, or was trained without a snapshot at ``target``.
    """
    src = study.model_dir(fold, "omr")
    last = src / "last.pt"
    if not last.exists():
        raise ValueError(f"omr_level_run: {last} does not exist; train the fold's OMR first (train_omr)")
    saved = torch.load(last, map_location="cpu", weights_only=True)
    if float(target) not in [float(v) for v in saved["config"].get("snapshots_at", ())]:
        raise ValueError(f"{src} was trained without a snapshot at {target:g} % validation SER "
                         f"(its snapshots_at: {tuple(saved['config'].get('snapshots_at', ()))}); retrain it with "
                         "TrainProfile.omr_snapshot_levels set")
    snap = snapshot_path(src, target)
    reached = snap.exists()
    if not reached and saved["epoch"] < saved["config"]["epochs"]:
        raise ValueError(f"{src}: its training is unfinished ({saved['epoch']} of {saved['config']['epochs']} "
                         f"epochs) and has not reached {target:g} % yet; finish it first")
    chosen = snap if reached else src / "best.pt"
    digest = io.sha256_file(chosen)[:16]
    checkpoint = torch.load(chosen, map_location="cpu", weights_only=True)
    epoch, value = int(checkpoint["epoch"]), float(checkpoint["value"])
    history = [row for row in saved["history"] if row["epoch"] <= epoch]
    name = omr_level_name(target)
    run_dir = study.model_dir(fold, name)
    info_path = run_dir / RUN_INFO
    info = io.read_json(info_path) if info_path.exists() else {}
    posteriors = {s: ctc_tasks.posteriors_path(run_dir, s) for s in SPLITS}
    if info.get("source_checkpoint") != digest or not all(p.exists() for p in posteriors.values()):
        source_info = io.read_json(src / RUN_INFO)
        vocabulary = Vocabulary.load(src / VOCABULARY)
        io.write_bytes(run_dir / "best.pt", chosen.read_bytes())
        vocabulary.save(run_dir / VOCABULARY)
        model = build_network("omr", len(vocabulary), study.profile.train)
        ctc_tasks.export_posteriors(run_dir, model, _TASKS["omr"](vocabulary),
                                    _eval_splits(study, fold, vocabulary, "image"), device=saved["config"]["device"])
        info = {"name": name, "fold": fold, "network": "omr", "profile": study.profile.name, "snapshot_of": "omr",
                "target_val_ser": float(target), "reached": reached, "source_checkpoint": digest,
                "n_train": source_info["n_train"], "left_out": source_info.get("left_out", {}),
                "network_config": source_info.get("network_config"), "input_pool": source_info.get("input_pool"),
                "best_epoch": epoch, "best_val_ser": value, "epochs_done": epoch, "posteriors_epoch": epoch}
        io.write_json(info_path, info)  # last: a run.json naming the digest means the folder is complete
    result = TrainResult(run_dir, "val_ser", "min", value, epoch, epoch, epoch, history)
    return CTCRun(name, fold, "omr", run_dir, result, int(info["n_train"]), dict(info["left_out"]), posteriors)


def train_a2s(study, fold: int, epochs: int | None = None, progress: bool = True) -> CTCRun:
    """Baseline DNN_A2S of a fold on the whole training fold; see :func:`train_network`."""
    return train_network(study, fold, "a2s", "a2s", None, epochs, progress)


def train_gradspsa(study, fold: int, epochs: int | None = None, progress: bool = True) -> CTCRun:
    """GradSPSA's DNN_A2S of a fold on the training pairs; needs the fold's ``omr`` run (:func:`train_omr`)."""
    return train_network(study, fold, "gradspsa", "gradspsa", None, epochs, progress)


# -- the one entry point for "train what is missing" -------------------------------------------------------------

_SCENARIO_RUN = re.compile(r"omr_s(?P<scenario>[1-9])(?:_p(?P<percent>[0-9.eE+-]+))?")
_LEVEL_RUN = re.compile(r"omr_at(?P<target>[0-9.eE+-]+)")


def ensure_run(study, fold: int, name: str, progress: bool = True) -> CTCRun:
    """The run ``name`` of a fold, trained first where it is missing or unfinished (a finished run returns at once).

    This is the only place that trains on demand; later stages (word graphs, fusion, scenarios) only read runs and
    say which one is missing.  Called by notebooks 02-05 and the reproduce driver.

    Parameters
    ----------
    study : mtlnb.camera_primus.study.PrimusStudy
    fold : int
    name : str
        ``"omr"``, ``"a2s"``, ``"gradspsa"`` (trains the fold's ``omr`` first: it reads it), a scenario OMR
        ``"omr_s<k>"`` (:func:`scenario_ids` at :data:`SCENARIO_PERCENTS`) or ``"omr_s<k>_p<percent>"`` (at another
        percentage, the name :func:`scenario_run_names` gives it), or a level run
        ``"omr_at<v>"`` (:func:`omr_level_run`; trains ``omr`` first).
    progress : bool
        tqdm bars and a line per epoch.

    Returns
    -------
    CTCRun

    Raises
    ------
    ValueError
        An unknown name, or a scenario folder that holds a training on another subset.
    """
    if name in NETWORKS:
        if name == "gradspsa":
            train_omr(study, fold, progress=progress)
        return train_network(study, fold, name, name, progress=progress)
    level = _LEVEL_RUN.fullmatch(name)
    if level:
        target = float(level["target"])
        if omr_level_name(target) != name:
            raise ValueError(f"ensure_run: {name!r} is not a level run name; use omr_level_name({target:g})")
        train_omr(study, fold, progress=progress)
        return omr_level_run(study, fold, target)
    scenario = _SCENARIO_RUN.fullmatch(name)
    if scenario:
        s = int(scenario["scenario"])
        percent = None if scenario["percent"] is None else float(scenario["percent"])
        if percent is not None and f"omr_s{s}_p{percent:g}" != name:
            raise ValueError(f"ensure_run: {name!r} is not a scenario run name; use omr_s{s}_p{percent:g}")
        if percent is not None and percent == SCENARIO_PERCENTS[s - 1]:
            raise ValueError(f"ensure_run: scenario {s} at its default {percent:g} % is named {SCENARIO_NAMES[s - 1]}")
        ids = scenario_ids(study, fold, s, percent)
        run = train_omr(study, fold, ids, name=name, progress=progress)
        if run.n_train + len(run.left_out) != len(ids):
            raise ValueError(f"{run.run_dir} was trained on {run.n_train + len(run.left_out)} samples, but {name} has "
                             f"{len(ids)}: delete the folder to retrain")
        return run
    raise ValueError(f"ensure_run: cannot make run {name!r}; choose omr, a2s, gradspsa, omr_s<k>, omr_s<k>_p<percent> "
                     "or omr_at<v>")


def ensure_runs(study, fold: int, names: Iterable[str], progress: bool = True) -> dict[str, CTCRun]:
    """:func:`ensure_run` for each name (``TrainProfile.concurrent_trainings`` at a time, in order where one at a
    time): ``{name: CTCRun}``."""
    names = list(dict.fromkeys(names))
    runs = ensure_runs_concurrently(study, [(fold, name) for name in names], progress)
    return {name: runs[(fold, name)] for name in names}


def _concurrency(study) -> int:
    return study.profile.train.concurrent_trainings


def run_jobs(study, jobs: list, concurrency: int | None = None) -> dict:
    """:func:`mtlnb.core.scheduler.run_jobs` at ``concurrency`` (default the profile's).  Before workers start, the
    folds and the feature cache are settled here, so that no two workers write them."""
    concurrency = concurrency or _concurrency(study)
    if concurrency > 1 and len(jobs) > 1:
        study.folds  # noqa: B018 - computes and writes the folds once, in this process (cached_property)
        study.cache()
    return scheduler.run_jobs(jobs, concurrency, device="auto")


def _needs(name: str) -> tuple[str, ...]:
    """The runs of the same fold that run ``name`` reads (trained first): the fold's ``omr`` for GradSPSA and the
    level runs."""
    return ("omr",) if name == "gradspsa" or _LEVEL_RUN.fullmatch(name) else ()


def ensure_runs_concurrently(study, wanted: Iterable[tuple[int, str]], progress: bool = True
                             ) -> dict[tuple[int, str], CTCRun]:
    """:func:`ensure_run` for each ``(fold, name)``, ``TrainProfile.concurrent_trainings`` at a time
    (:mod:`mtlnb.core.scheduler`); a run waits for the runs it reads (:func:`_needs`), which are added where not
    listed.  One at a time, the runs are made in the order given, in this process.

    Parameters
    ----------
    study : mtlnb.camera_primus.study.PrimusStudy
    wanted : iterable of (int, str)
        Folds and run names, as :func:`ensure_run` takes them.
    progress : bool
        Bars and epoch lines; only with one training at a time (several processes would garble them).

    Returns
    -------
    dict
        ``{(fold, name): CTCRun}`` for every run listed (and those added).
    """
    wanted = list(dict.fromkeys(wanted))
    keys = list(wanted)
    for fold, name in wanted:
        keys[:0] = [(fold, need) for need in _needs(name) if (fold, need) not in keys]
    keys = list(dict.fromkeys(keys))
    show = progress and _concurrency(study) == 1
    jobs = [scheduler.Job((fold, name), ensure_run, (study, fold, name), {"progress": show},
                          tuple((fold, need) for need in _needs(name)))
            for fold, name in keys]
    return run_jobs(study, jobs)


def run_maker(name: str) -> str:
    """Where run ``name`` is made, for error messages of the stages that read it: the notebook and the call."""
    notebook = {"omr": "notebook 02", "a2s": "notebook 03", "gradspsa": "notebook 03"}.get(name, "notebook 05")
    return f"{notebook}, or mtlnb.camera_primus.networks.runs.ensure_run(study, fold, {name!r})"


# -- reading runs back ----------------------------------------------------------------------------------------------

def learning_curves(runs: Mapping[str, str | os.PathLike | CTCRun] | Sequence[CTCRun]) -> pd.DataFrame:
    """Every epoch of every run, long format.

    Parameters
    ----------
    runs : mapping of label -> run folder or CTCRun, or a sequence of CTCRun (labelled by their names)

    Returns
    -------
    DataFrame
        Columns ``run, epoch, train_loss, val_ser, val_loss, seconds`` (one row per logged epoch; ``val_ser`` in
        %, losses in nats per sample).
    """
    if not isinstance(runs, Mapping):
        runs = {r.name: r for r in runs}
    frames = []
    for label, run in runs.items():
        log = Path(run.run_dir if isinstance(run, CTCRun) else run) / "log.csv"
        if not log.exists():
            raise ValueError(f"learning_curves: {log} does not exist (run {label!r} has not trained yet)")
        frames.append(pd.read_csv(log).assign(run=label))
    df = pd.concat(frames, ignore_index=True)
    return df[["run", "epoch", "train_loss", "val_ser", "val_loss", "seconds"]]


def run_dir_of(study, fold: int, name: str) -> Path:
    """The folder of run ``name`` of a fold, without creating it; ``ValueError`` if it holds no posteriors."""
    d = study.root / "models" / f"fold{fold}" / name
    if not all(ctc_tasks.posteriors_path(d, s).exists() for s in SPLITS):
        raise ValueError(f"{d} holds no posteriors: train {name!r} of fold {fold} first")
    return d


def greedy_transcriptions(study, fold: int, name: str, split: str = "test",
                          ids: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Greedy CTC decoding of a run's saved posteriors: ``{sample id: tokens}`` (``ids`` default: all)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    with ctc_tasks.load_posteriors(ctc_tasks.posteriors_path(run_dir_of(study, fold, name), split)) as post:
        wanted = list(post) if ids is None else list(ids)
        missing = [sid for sid in wanted if sid not in post]
        if missing:
            raise ValueError(f"{post.path} has no posteriors of {missing[:3]}")
        out = {}
        for sid in wanted:  # one sample's posteriors in memory at a time
            x = post[sid]
            out[sid] = post.vocabulary.decode(ctc_tasks.greedy_decode(x[None], np.array([len(x)]), post.blank)[0])
        return out


def ser_table(study, names: Sequence[str], folds: Sequence[int] | None = None, split: str = "test") -> pd.DataFrame:
    """Corpus-level greedy SER (%) of each run on a split, one row per fold (the thesis's unimodal figures).

    Returns a DataFrame indexed by ``fold`` with one column per name, plus ``n`` (samples); runs not trained for a
    fold are NaN.
    """
    folds = list(folds) if folds is not None else list(study.profile.corpus.folds)
    cached = set(study.cache().ids)
    rows = []
    for k in folds:
        ids = [sid for sid in getattr(_fold(study, k), split) if sid in cached]
        refs = [study.corpus.tokens(sid) for sid in ids]
        row = {"fold": k, "n": len(ids)}
        for name in names:
            try:
                hyps = greedy_transcriptions(study, k, name, split, ids)
            except ValueError:
                row[name] = float("nan")
                continue
            row[name] = metrics.ser([hyps[sid] for sid in ids], refs)
        rows.append(row)
    return pd.DataFrame(rows).set_index("fold")


def transcribe_examples(study, fold: int, names: Sequence[str], n: int = 4, split: str = "test",
                        ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Greedy transcriptions of a few samples beside their ground truth.

    Parameters
    ----------
    names : sequence of str
        Runs to show (e.g. ``["omr"]`` or ``["a2s", "gradspsa"]``).
    n : int
        How many samples when ``ids`` is not given: the first ``n`` ids of the split, sorted (deterministic).

    Returns
    -------
    DataFrame
        One row per sample: ``id``, ``reference`` (tokens), and per run ``<name>`` (tokens) and ``<name>_ser``
        (that sample's SER, %).
    """
    split_ids = sorted(getattr(_fold(study, fold), split))
    ids = list(ids) if ids is not None else split_ids[:n]
    rows = [{"id": sid, "reference": study.corpus.tokens(sid)} for sid in ids]
    for name in names:
        hyps = greedy_transcriptions(study, fold, name, split, ids)
        for row in rows:
            row[name] = hyps[row["id"]]
            row[f"{name}_ser"] = float(metrics.sample_ser([row[name]], [row["reference"]])[0])
    return pd.DataFrame(rows)


def run_summary(runs: Mapping[str, CTCRun]) -> pd.DataFrame:
    """One row per run: samples trained on and left out, epochs, best epoch, validation SER (%), minutes."""
    rows = [{"run": label, "trained on": r.n_train, "left out": len(r.left_out), "epochs": r.result.epochs_done,
             "best epoch": r.result.best_epoch, "val SER %": r.best_val_ser, "minutes": r.train_seconds / 60}
            for label, r in runs.items()]
    return pd.DataFrame(rows).set_index("run")


# --- scenario runs ---
# The runs the thesis's nine scenarios read (mtlnb.camera_primus.evaluation.scenarios, notebook 05), named and
# made here so that the evaluation only reads: one OMR per scenario at its OMR level (a subset OMR, or a snapshot
# of the full OMR's training), the A2S networks of the pairs, and the OMRs that calibrate the subset sizes.

SCENARIO_OMR_SOURCES = ("auto", "subsets", "snapshots")  # where the scenarios' OMR levels come from
CALIBRATION_SCENARIO = 1  # the calibration OMRs draw their subsets with this scenario's seed


def scenario_percents(profile) -> tuple[float, ...]:
    """The profile's scenario OMR subset sizes (%): ``profile.train.scenario_percents``, or where that is None the
    baseline's :data:`SCENARIO_PERCENTS`."""
    percents = tuple(profile.train.scenario_percents or SCENARIO_PERCENTS)
    if len(percents) != len(SCENARIO_PERCENTS) or not all(0 < p <= 100 for p in percents):
        raise ValueError(f"scenario percents must be nine values in (0, 100], got {percents}")
    return percents


def scenario_run_names(percents: Sequence[float]) -> tuple[str, ...]:
    """Run names of the scenario OMRs: ``omr_s<s>`` at the baseline's percentages, ``omr_s<s>_p<percent>``
    otherwise (a calibrated size never reuses a run of another size); :func:`ensure_run` makes either."""
    return tuple(name if float(p) == float(d) else f"{name}_p{float(p):g}"
                 for name, p, d in zip(SCENARIO_NAMES, percents, SCENARIO_PERCENTS))


def scenario_train_sizes(study, fold: int, percents: Sequence[float]) -> list[int]:
    """Training samples of each scenario OMR at ``percents`` (what :func:`ensure_run` trains it on)."""
    return [len(scenario_ids(study, fold, s, None if float(p) == float(d) else p))
            for s, p, d in zip(range(1, len(SCENARIO_PERCENTS) + 1), percents, SCENARIO_PERCENTS)]


def scenario_omr_source(profile, omr_levels: str = "auto") -> str:
    """``"subsets"`` or ``"snapshots"``: where the scenarios' OMR levels come from for ``profile``.

    ``omr_levels`` is ``"subsets"`` (the thesis: OMRs trained on p % of the training fold), ``"snapshots"`` (the
    full OMR's training at ``TrainProfile.omr_snapshot_levels``, :func:`omr_level_run`) or ``"auto"``: snapshots
    where the profile lists levels (mini), else subsets.  ``ValueError`` when snapshots are asked for and the
    profile lists none."""
    if omr_levels not in SCENARIO_OMR_SOURCES:
        raise ValueError(f"omr_levels must be one of {SCENARIO_OMR_SOURCES}, got {omr_levels!r}")
    listed = profile.train.omr_snapshot_levels is not None
    if omr_levels == "auto":
        return "snapshots" if listed else "subsets"
    if omr_levels == "snapshots" and not listed:
        raise ValueError(f"omr_levels='snapshots' needs TrainProfile.omr_snapshot_levels; profile {profile.name!r} "
                         "lists none")
    return omr_levels


def scenario_omr_names(profile, omr_levels: str = "auto", percents: Sequence[float] | None = None
                       ) -> tuple[str, ...]:
    """The OMR run of each of the nine scenarios.

    Parameters
    ----------
    profile : mtlnb.profiles.Profile
    omr_levels : {"auto", "subsets", "snapshots"}
        :func:`scenario_omr_source`.
    percents : nine floats, optional
        Subset sizes (%) where the levels are subsets; default :func:`scenario_percents`.

    Returns
    -------
    tuple of nine str
        Subsets: :func:`scenario_run_names`.  Snapshots: ``omr_at<v>`` (:func:`omr_level_name`) of the level's
        ``TrainProfile.omr_snapshot_levels`` entry; scenarios 1-3, 4-6 and 7-9 share the high, medium and low OMR
        level (the thesis's numbering, as :data:`SCENARIO_PERCENTS`), hence their run.
    """
    n = len(SCENARIO_PERCENTS)
    if scenario_omr_source(profile, omr_levels) == "snapshots":
        targets = [float(v) for v in profile.train.omr_snapshot_levels]
        return tuple(omr_level_name(targets[(s - 1) // 3]) for s in range(1, n + 1))
    percents = tuple(percents) if percents is not None else scenario_percents(profile)
    if len(percents) != n:
        raise ValueError(f"scenario_omr_names: nine percents needed, got {len(percents)}")
    return scenario_run_names(percents)


def ensure_scenario_runs(study, fold: int, omr_levels: str = "auto", percents: Sequence[float] | None = None,
                         a2s_names: Sequence[str] = ("a2s", "gradspsa"), scenarios: Iterable[int] | None = None,
                         progress: bool = True) -> tuple[str, ...]:
    """Train what the scenarios of a fold read, where it is missing (:func:`ensure_runs`); notebook 05 §2.

    Parameters
    ----------
    study : mtlnb.camera_primus.study.PrimusStudy
    fold : int
    omr_levels : {"auto", "subsets", "snapshots"}
        :func:`scenario_omr_source`: the subset OMRs (``omr_s<s>``, at ``percents``) or the level snapshots of
        the fold's ``omr`` (``omr_at<v>``, which trains ``omr`` first).
    percents : nine floats, optional
        Subset sizes (%); default :func:`scenario_percents`.  Ignored for snapshots.
    a2s_names : sequence of str
        The pairs' A2S runs, in this order (``gradspsa`` trains the fold's ``omr`` first: it reads it).
    scenarios : iterable of int, optional
        Subset of 1..9 (default all).
    progress : bool

    Returns
    -------
    tuple of str
        The runs ensured, in the order they were: the scenarios' OMRs (snapshots by increasing target), then
        ``a2s_names``.
    """
    wanted = list(scenarios) if scenarios is not None else list(range(1, len(SCENARIO_PERCENTS) + 1))
    bad = [s for s in wanted if not 1 <= s <= len(SCENARIO_PERCENTS)]
    if bad:
        raise ValueError(f"ensure_scenario_runs: scenarios must be in 1..{len(SCENARIO_PERCENTS)}, got {bad}")
    source = scenario_omr_source(study.profile, omr_levels)
    names = scenario_omr_names(study.profile, source, percents)
    if source == "snapshots":  # a level's three scenarios share its run
        target = {omr_level_name(float(v)): float(v) for v in study.profile.train.omr_snapshot_levels}
        omrs = sorted({names[s - 1] for s in wanted}, key=target.__getitem__)
    else:
        omrs = [names[s - 1] for s in wanted]
    study.build_corpus(progress=progress)  # a synthetic corpus that is missing (a finished one is only checked)
    names = list(dict.fromkeys([*omrs, *a2s_names]))
    ensure_runs_concurrently(study, [(fold, name) for name in names], progress)
    return tuple(names)


def calibration_run_name(percent: float) -> str:
    """Run name of the OMR that calibrates the subset sizes at ``percent`` %: ``omr_cal_p<percent>``."""
    return f"omr_cal_p{float(percent):g}"


def ensure_calibration_runs(study, fold: int, percents: Sequence[float], progress: bool = True) -> dict[str, CTCRun]:
    """The OMRs the subset calibration reads (:func:`mtlnb.camera_primus.evaluation.scenarios.calibrate_percents`,
    notebook 05 §1), trained where missing: one per percent, named :func:`calibration_run_name`, on that percent of
    the training fold drawn with :data:`CALIBRATION_SCENARIO`'s seed, for the profile's ``scenario_omr_epochs``.
    Returns ``{name: CTCRun}``."""
    if not percents or not all(0 < p <= 100 for p in percents):
        raise ValueError(f"ensure_calibration_runs: percents must be non-empty, in (0, 100], got {list(percents)}")
    study.build_corpus(progress=progress)
    out = {}
    for percent in (float(p) for p in percents):
        ids = scenario_ids(study, fold, CALIBRATION_SCENARIO, percent)
        name = calibration_run_name(percent)
        out[name] = train_omr(study, fold, ids, name=name, epochs=study.profile.train.scenario_omr_epochs,
                              progress=progress)
    return out
