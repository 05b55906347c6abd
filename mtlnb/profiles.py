"""The three run profiles, defined in one place.

One name chooses every size in the study:

- ``smoke``: CI. Seconds per notebook; exercises the plumbing, learns nothing.
- ``mini``: a 2-core CPU. The whole study in under two hours, and the networks visibly learn
  (one fold, about a thousand training pairs, reduced grids).
- ``paper``: a GPU. The papers' sizes, epochs and grids.

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

PROFILE_NAMES = ("smoke", "mini", "paper")


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
        # Sized for about an hour of CTC training on 2 CPU cores (benchmarks/bench_training.py): networks of the
        # papers' shape with fewer filters and units; one CTC frame per 4 input columns (8 for GradSPSA); the A2S
        # networks read the CQT pooled by 2 (it is a 256/120 up-sampling; their first conv block at full size
        # would cost most of their time); OMR batch 4 instead of 16 (4x the updates per epoch: the CTC plateau
        # ends after a number of updates, not of samples); validation in batches of 16.  OMR 40 epochs: its CTC
        # plateau lasts ~7 of them, and validation SER was still 39 % after 25 (23 % after 40).  Scenario OMR levels
        # from that training at 50 / 35 / 25 % validation SER: the 2-10.5 % subsets (20-107 images) do not learn.
        train=TrainProfile(omr_epochs=40, a2s_epochs=15, gradspsa_epochs=10, scenario_omr_epochs=4, omr_batch=4,
                           lstm_units=64, omr_filters=(16, 16, 32, 32), omr_pools=((2, 2), (2, 2), (2, 1), (2, 1)),
                           a2s_input_pool=2, eval_batch=16, omr_snapshot_levels=(50.0, 35.0, 25.0)),
        # Scenarios: half of the 340 validation and 340 test samples (about 10 min of fusion on 2 cores).
        fusion=FusionProfile(scenario_max_test_samples=170),
        # Piano: the rows that test the paper's two observations at η = 0.05 -- 7 vs 9 (velocity R² without and with
        # the sustain task), 11 (λ_vel = 1: diverged in the paper's Table II) against cross-stitch row 3 (full,
        # balanced, every λ = 1) -- and row 1 (no regression task) for Tables I/II; 3,000 updates each, about 100 min
        # on one core beside the GradSPSA notebooks (reproduce runs the two studies side by side).
        piano=PianoProfile(n_pieces=24, seconds_per_piece=60.0, updates=3000, maps=16, evals=4,
                           learning_rates=(0.05,), grid_rows=(1, 7, 9, 11), cross_stitch_rows=(3,),
                           lr_range_batches=400),
    ),
    "paper": Profile(
        name="paper",
        corpus=CorpusProfile(n_pairs=22285, folds=(0, 1, 2, 3, 4)),
        train=TrainProfile(omr_epochs=150, a2s_epochs=150, gradspsa_epochs=150, scenario_omr_epochs=150),
        piano=PianoProfile(n_pieces=1276, seconds_per_piece=0.0, updates=680_000, restarts=2),
    ),
}


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
