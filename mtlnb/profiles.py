"""The run profiles, defined in one place.

One name chooses every size in the study:

- ``smoke``: CI. Seconds per notebook; exercises the plumbing, learns nothing.
- ``mini``: a 2-core CPU. The whole study in under two hours, and the networks visibly learn
  (one fold, about a thousand training pairs, reduced grids).
- ``paper``: a GPU. The papers' sizes, epochs and grids.
- ``paper-dry``: the ``paper`` profile's code paths at its sizes on a CPU in minutes, before a GPU-day is spent on
  it: the papers' networks, batch sizes, folds and grids, but a small corpus, one batch and one epoch per
  training.  Every number it produces is meaningless (``Profile.dry_run``); what it proves is that every stage
  runs at the paper's shapes, and it measures the step times and memory that project the real run
  (:mod:`mtlnb.camera_primus.networks.budget`).

Each study stage reads its own block (``profile.corpus``, ``profile.train`` ...).  Add a field to the block of
the stage that needs it, with a comment saying why it has that value in each profile.

How a stage derives its settings: in its own module, from the block it reads, never by testing the profile's
name -- :func:`mtlnb.camera_primus.networks.ctc_tasks.train_config` (``profile.train``),
:meth:`mtlnb.camera_primus.fusion.pipeline.LateFusionConfig.for_profile` (``profile.fusion``),
:func:`mtlnb.camera_primus.networks.runs.scenario_percents` (``profile.train``),
:func:`mtlnb.piano.training.profile_grid` (``profile.piano``).  Sizes that depend on the profile live here and
nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

PROFILE_NAMES = ("smoke", "mini", "paper", "paper-dry")


@dataclass(frozen=True)
class CorpusProfile:
    """The corpus and its split: how many pairs, which folds are trained and evaluated (notebook 01 and every
    notebook that reads a fold)."""

    n_pairs: int  # synthetic incipits generated; the paper's cleansed Camera-PrIMuS has 22,285
    folds: tuple[int, ...]  # which of the five folds are trained and evaluated
    n_folds: int = 5  # k of the k-fold split (test folds partition the data; val = next fold)
    subset_fraction: float = 1.0  # the thesis's 60 % random subset is 0.6 (36/12/12)
    seed: int = 42  # the baseline's seed


@dataclass(frozen=True)
class TrainProfile:
    """Epochs, batches and network sizes of the CTC networks (notebooks 02-03, the scenario OMRs of notebook 05)."""

    omr_epochs: int  # baseline: 150
    a2s_epochs: int  # baseline: 150
    gradspsa_epochs: int  # thesis: 150 (its Table 2 shows 80 suffice for A2S)
    scenario_omr_epochs: int  # epochs of each of the nine scenario OMR trainings
    # OMR subset sizes of the nine scenarios (% of the training fold); None = the baseline's
    # (mtlnb.camera_primus.networks.runs.SCENARIO_PERCENTS).  A calibrated set (mtlnb.camera_primus.evaluation.scenarios.calibrate_percents) goes here;
    # notebook 05 then trains those OMRs (runs omr_s<s>_p<percent>), notebook 02 only the baseline's.
    scenario_percents: tuple[float, ...] | None = None
    # Validation SER (%) of the three scenario OMR levels (H, M, L) taken from the main OMR's training instead of
    # nine subset trainings (mtlnb.camera_primus.networks.runs.omr_level_run; ScenarioConfig.omr_levels).  None: the baseline's
    # subsets.  Only for profiles where the subsets cannot learn (mini: 20-107 images stay on the CTC plateau).
    omr_snapshot_levels: tuple[float, float, float] | None = None
    omr_batch: int = 16  # baseline
    a2s_batch: int = 4  # baseline
    gradspsa_batch: int = 2  # thesis: pairs, halved for memory
    max_train_batches: int | None = None  # cap per epoch (smoke only), None = the whole fold
    learning_rate: float = 1e-3  # Adam, baseline and thesis
    # Network sizes (mtlnb.camera_primus.networks.runs.network_configs).  The defaults are the papers'; smaller values exist only
    # because 2 CPU cores cannot train the papers' networks in the mini budget (benchmarks/bench_training.py).
    lstm_units: int = 256  # units per direction of every BiLSTM (both papers: 256)
    omr_filters: tuple[int, ...] = (64, 64, 128, 128)  # OMR conv channels (baseline)
    omr_pools: tuple[tuple[int, int], ...] = ((2, 2), (2, 1), (2, 1), (2, 1))  # (h, w) per OMR block (baseline)
    a2s_pools: tuple[tuple[int, int], ...] = ((2, 2), (2, 1))  # A2S blocks 1-2 (baseline); GradSPSA adds (1, 2)
    a2s_input_pool: int = 1  # A2S/GradSPSA read the CQT average-pooled by this in both axes (papers: 1, none)
    max_train_audio_width: int | None = None  # A2S/GradSPSA training skips wider CQTs (columns); None = all (papers)
    eval_batch: int | None = None  # validation batch size; None = the training batch (mtlnb.camera_primus.networks.ctc_tasks)
    # GradSPSA trains and validates on this random share of each fold's splits (mtlnb.camera_primus.corpus.primus
    # .subsample_fold): the thesis ran it on a 60 % subset (36 / 12 / 12 % of the corpus, its Table 1) while the
    # baseline networks keep the full folds.  1.0 = the full folds (switch it off); 0.6 = the thesis.  Posteriors are
    # still exported for the full validation and test folds, so that late fusion reads the same samples for every
    # network (mtlnb.camera_primus.networks.runs).
    gradspsa_subset_fraction: float = 1.0
    # Independent trainings run at once, as processes sharing one device (mtlnb.core.scheduler; through CUDA MPS
    # where it is installed): small batches leave a GPU idle between kernels, so several trainings overlap their
    # latency.
    # 1 = one after the other in the calling process.
    concurrent_trainings: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.gradspsa_subset_fraction <= 1:
            raise ValueError(f"TrainProfile.gradspsa_subset_fraction must be in (0, 1], got "
                             f"{self.gradspsa_subset_fraction}")
        if self.concurrent_trainings < 1:
            raise ValueError(f"TrainProfile.concurrent_trainings must be >= 1, got {self.concurrent_trainings}")


@dataclass(frozen=True)
class FusionProfile:
    """The LM, the word-graph search and the α sweep of late fusion (notebooks 04-05)."""

    lm_order: int = 5  # baseline: SRILM -order 5
    alphas: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))  # OMR weight sweep
    max_test_samples: int | None = None  # cap on decoded test samples (smoke only)
    # Cap on the validation and test samples decoded per scenario run (mtlnb.camera_primus.evaluation.scenarios): a
    # fold is fused 9 × 2 times there (every scenario, both pairs) against once in notebook 04.  None = the whole
    # fold (the thesis).
    scenario_max_test_samples: int | None = None
    # Word-graph search beams; None keeps DecoderConfig's (mtlnb.camera_primus.decoding.search), the baseline's recipe.
    # Only smoke narrows them: its networks train for two batches, so their posteriors are uniform to 0.01 nats and
    # at the baseline's beams every symbol survives at every frame (one 180-frame sample takes minutes, its lattice
    # has 10^5 arcs).  These keep smoke to seconds (plumbing only: the lattices come out nearly empty).
    decoder_beam: float | None = None  # --beam (scaled log units); the baseline: 15
    decoder_lattice_beam: float | None = None  # --lattice-beam (scaled log units); the baseline: 12
    decoder_max_active: int | None = None  # hypotheses kept per frame; DecoderConfig's default: 2000


@dataclass(frozen=True)
class PianoProfile:
    """The piano study's data, networks, updates and grids (notebooks 06-08)."""

    n_pieces: int  # synthetic performances
    seconds_per_piece: float  # length of each synthetic performance
    updates: int  # SGD updates per configuration; the paper: 680,000
    batch: int = 64  # the paper
    # Networks and grids of mtlnb.piano.training; the defaults are the paper's.  Smaller values exist only because
    # 2 CPU cores cannot train the paper's networks in the mini budget (benchmarks/bench_piano_training.py).
    maps: int | None = None  # stem feature maps of the hard-sharing net (cross-stitch columns get half); None = 96
    evals: int = 34  # validation passes per configuration, evenly spaced: the paper's 680,000 = 20,000 × 34
    learning_rates: tuple[float, ...] = (0.01, 0.05)  # η of Tables I/III and II/IV
    grid_rows: tuple[int, ...] | None = None  # rows (1-based) of Tables I/II to train; None = all eleven
    cross_stitch_rows: tuple[int, ...] | None = None  # rows (1-based) of Tables III/IV to train; None = all four
    restarts: int = 0  # new seeds tried before a configuration counts as diverged (the paper: "repeated restarts")
    lr_range_batches: int = 4096  # length of the learning-rate range test (the authors' code: at most 4,096)


@dataclass(frozen=True)
class Profile:
    """One run profile: a name and one block per stage."""

    name: str
    corpus: CorpusProfile
    train: TrainProfile
    fusion: FusionProfile = field(default_factory=FusionProfile)
    piano: PianoProfile = field(default_factory=lambda: PianoProfile(4, 10.0, 20))
    # A dry run: the profile's numbers mean nothing (one batch per training); notebooks and tables say so.
    dry_run: bool = False


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        corpus=CorpusProfile(n_pairs=40, folds=(0,)),
        # Plumbing only: the mini networks (the papers' take ~20 s per OMR batch on 2 CPU cores), two batches.
        train=TrainProfile(omr_epochs=1, a2s_epochs=1, gradspsa_epochs=1, scenario_omr_epochs=1,
                           max_train_batches=2, lstm_units=32, omr_filters=(8, 8, 16, 16),
                           omr_pools=((2, 2), (2, 2), (2, 1), (2, 1)), a2s_input_pool=2),
        fusion=FusionProfile(lm_order=3, alphas=(0.0, 0.5, 1.0), max_test_samples=8, decoder_beam=1.0,
                             decoder_lattice_beam=1.0, decoder_max_active=4),
        # Plumbing only: a tiny network, two rows of Table II and two cross-stitch networks, one validation.
        piano=PianoProfile(n_pieces=4, seconds_per_piece=6.0, updates=20, maps=4, evals=1, learning_rates=(0.05,),
                           grid_rows=(1, 9), cross_stitch_rows=(1, 3), lr_range_batches=20),
    ),
    "mini": Profile(
        name="mini",
        # 1,700 pairs -> 1,020 / 340 / 340 with the 60/20/20 split: "about a thousand training pairs".
        corpus=CorpusProfile(n_pairs=1700, folds=(0,)),
        # Sized for about an hour of CTC training on 2 CPU cores (benchmarks/bench_training.py): networks of the papers'
        # shape with fewer filters and units; one CTC frame per 4 input columns (8 for GradSPSA); the A2S networks read
        # the CQT pooled by 2 (it is a 256/120 up-sampling; their first conv block at full size would cost most of their
        # time); OMR batch 4 instead of 16 (4x the updates per epoch: the CTC plateau ends after a number of updates,
        # not of samples); validation in batches of 16.  OMR 90 epochs: its CTC plateau lasts ~7 of them; on the default
        # (swept-camera) corpus validation SER 31.1 % after 40, 23.3 % at the best of 60 (epoch 54) and 19.6 % at the
        # best of 90 (epoch 88); on 60 real Camera-PrIMuS photos (python -m mtlnb sim2real) 60 -> 90 epochs took SER
        # from 27.9 to 24.1 %, the pitch-only SER from 16.8 to 13.5 % and key signatures right from 75 to 85 %: the
        # counting of key-signature accidentals is learned late.  ~38 s an epoch on one core.  Baseline A2S 40 epochs: its CTC plateau lasts 11 (validation SER 95 % at epoch 10,
        # then 87, 65, 55, 53 and 47 % at epoch 15, still falling ~5 points an epoch), and of a 50 % A2S the thesis's
        # filters (per-sample SER <= 30 / 10 %) keep too few test samples for notebook 05 to read; ~28 s an epoch on 2
        # threads (33.8 % after 40).  GradSPSA 20 epochs: it leaves the plateau in its first (it reads the trained OMR)
        # but was at 39.7 % after 5 and still falling; ~50 s an epoch, so 20 give it about the baseline A2S's training
        # time.  Scenario OMR levels from that training at 50 / 35 / 25 % validation SER: the 2-10.5 % subsets (20-107
        # images) do not learn.
        train=TrainProfile(omr_epochs=90, a2s_epochs=40, gradspsa_epochs=20, scenario_omr_epochs=4, omr_batch=4,
                           lstm_units=64, omr_filters=(16, 16, 32, 32), omr_pools=((2, 2), (2, 2), (2, 1), (2, 1)),
                           a2s_input_pool=2, eval_batch=16, omr_snapshot_levels=(50.0, 35.0, 25.0)),
        # Scenarios: the whole fold, 340 validation and 340 test samples, as the thesis; the cost is per sample,
        # about twice the former 170-sample cap's (~20 instead of ~10 min of word graphs and fusion on 2 cores).
        fusion=FusionProfile(scenario_max_test_samples=None),
        # Piano: the rows that test the paper's two observations at η = 0.05 -- 7 vs 9 (velocity R² without and with
        # the sustain task), 11 (λ_vel = 1: diverged in the paper's Table II) against cross-stitch row 3 (full,
        # balanced, every λ = 1) -- and row 1 (no regression task) for Tables I/II; 2,500 updates each: notebook 07
        # in about 24 min on one core beside the GradSPSA notebooks (reproduce runs the two studies side by side;
        # 3,000 updates took 58 min before the networks' fast path, ~37 min after it; 2,000 took 22 min with torch's
        # generator for the noise and 19 min with the noise table; benchmarks/bench_piano_training.py).
        piano=PianoProfile(n_pieces=24, seconds_per_piece=60.0, updates=2500, maps=16, evals=4,
                           learning_rates=(0.05,), grid_rows=(1, 7, 9, 11), cross_stitch_rows=(3,),
                           lr_range_batches=400),
    ),
    "paper": Profile(
        name="paper",
        corpus=CorpusProfile(n_pairs=22285, folds=(0, 1, 2, 3, 4)),
        # The thesis's set-up: the baseline networks on the full folds, GradSPSA on the 60 % subset (Table 1).
        # Four trainings at once: at batch 2-4 a training is bound by kernel latency, not by the H100's arithmetic
        # (benchmarks/bench_training.py); an assumed value, to be replaced by the concurrency that minimises the
        # measured wall time on a GPU (bench_training.py --device cuda --concurrency ...).
        train=TrainProfile(omr_epochs=150, a2s_epochs=150, gradspsa_epochs=150, scenario_omr_epochs=150,
                           gradspsa_subset_fraction=0.6, concurrent_trainings=4),
        piano=PianoProfile(n_pieces=1276, seconds_per_piece=0.0, updates=680_000, restarts=2),
    ),
}

_PAPER = PROFILES["paper"]
# The paper profile's dry run: every field that shapes a tensor or a grid is the paper's; only the amount of data
# and of training shrinks.  30 pairs in the paper's five-fold split give 18 / 6 / 6 per fold (one OMR batch of 16;
# the 60 % GradSPSA subset: 11 / 4 / 4); one batch and one epoch per training; the nine scenario OMRs get one batch
# of samples each (runs.scenario_ids).  Two of the five folds are trained and evaluated: every path that reads
# several folds (means over folds, the selected-folds scheme, cross-validation tables) runs, and the other three
# would repeat fold 0's code on other ids at ~5 min of CPU each (a paper-size OMR step takes 5-17 s on one core).
# Concurrency 1: on a CPU, processes would only share the same cores.  Decoder beams as smoke's: untrained networks give uniform
# posteriors, and at the baseline's beams one sample's word graph takes minutes (FusionProfile); the LM order and
# the α grid stay the paper's.  Piano: the paper's network (96 maps) and every row and learning rate of Tables
# I-IV, two updates each on four 6-second synthetic performances (the paper's MAESTRO is not here).
PROFILES["paper-dry"] = Profile(
    name="paper-dry",
    corpus=replace(_PAPER.corpus, n_pairs=30, folds=(0, 1)),
    train=replace(_PAPER.train, omr_epochs=1, a2s_epochs=1, gradspsa_epochs=1, scenario_omr_epochs=1,
                  max_train_batches=1, concurrent_trainings=1),
    fusion=replace(_PAPER.fusion, max_test_samples=4, scenario_max_test_samples=4, decoder_beam=1.0,
                   decoder_lattice_beam=1.0, decoder_max_active=4),
    piano=replace(_PAPER.piano, n_pieces=4, seconds_per_piece=6.0, updates=2, evals=1, restarts=0,
                  lr_range_batches=2),
    dry_run=True,
)


def default_profile_name() -> str:
    """``smoke`` under CI, ``paper`` where CUDA is present, ``mini`` otherwise."""
    if os.environ.get("CI"):
        return "smoke"
    try:
        import torch

        if torch.cuda.is_available():
            return "paper"
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return "mini"


def get_profile(name: str | None = None, **overrides) -> Profile:
    """Return the profile called ``name`` (default: :func:`default_profile_name`).

    ``overrides`` replace top-level blocks, e.g. ``get_profile("mini", corpus=CorpusProfile(...))``.
    """
    name = name or default_profile_name()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}")
    return replace(PROFILES[name], **overrides) if overrides else PROFILES[name]
