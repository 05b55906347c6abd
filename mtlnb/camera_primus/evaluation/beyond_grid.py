"""What notebook 09 ("Beyond the thesis") runs in each profile: the seeds, the ablations, the sweeps, the samples.

:class:`BeyondGrid` lists the experiments' trainings and evaluation sizes; :func:`grid_for` gives a profile's.
:meth:`BeyondGrid.variants` turns a grid into the trainings (:class:`~mtlnb.camera_primus.networks.variants.
Variant`), and :meth:`BeyondGrid.omitted` says in words what the profile leaves out of the full (``paper``) grid --
the notebook prints both, so that nothing is reduced silently.

Where the grids live: a profile that carries a ``beyond`` block (a :class:`BeyondGrid`) uses it; otherwise
:data:`GRIDS` by the profile's name (the interim home until :mod:`mtlnb.profiles` has a ``beyond`` block).

Sizes and why (2 CPU cores; one torch thread per training, two trainings side by side, as measured in the
``mini`` run of notebook 03: an A2S epoch of the 1,020 training samples ≈ 43 s, a GradSPSA epoch of the 1,012 pairs
at batch 2 ≈ 75 s, validation included):

- ``smoke``: every code path, learning nothing: two seeds of each network, the four ablations, one more γ, one
  more rule, both subsets for both networks, batch 2 and 8; the profile's one epoch of two batches.
- ``mini`` (≤ 90 min on 2 cores): the profile's epochs (A2S 40, GradSPSA 20), so that seed 42 of each network *is*
  notebook 03's run and every variant is read at the level notebook 05 reports; seeds 42 and 43 of both networks
  and the four ablations: six new trainings, ≈ 140 min of one core, two at a time ≈ 70 min.  No γ or rule sweep,
  subsets or batch 8 (another ≈ 2 h of one core).  Fusion on the whole validation and test folds.  (Three epochs
  per training, an earlier choice, left the baseline A2S on its CTC plateau: 97.6 % validation SER at epoch 3,
  the plateau ends at epoch 11 -- nothing to compare.)
- ``paper``: the full grid on the first fold of the profile: 3 seeds of each network at the profile's epochs (seed
  42 is notebook 03's run), the four ablations, γ ∈ {0, 1e-7, 1e-5, 1e-3}, the three pairing rules, the random and
  stratified 60 % subsets of both networks, batch 2 and 8; every test sample; the profile's concurrent trainings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mtlnb.camera_primus.networks.variants import DEFAULT_SEED, Variant
from mtlnb.camera_primus.networks import gradspsa_a2s, losses

FULL_GAMMAS = (0.0, 1e-7, 1e-5, 1e-3)  # the γ sweep asked for: none, the thesis's, 100x and 10,000x
SMOOTHINGS = ("witten_bell", "kneser_ney")  # the thesis's and the baseline's LM smoothing


@dataclass(frozen=True)
class BeyondGrid:
    """The trainings and evaluation sizes of notebook 09 (module notes)."""

    seeds: tuple[int, ...]  # GradSPSA training seeds; the first is the reference of every other experiment
    a2s_seeds: tuple[int, ...]  # baseline A2S training seeds (the first pairs with the first GradSPSA seed)
    a2s_epochs: int | None  # epochs of every A2S training here; None: the profile's (notebook 03's)
    gradspsa_epochs: int | None  # likewise for GradSPSA
    ablations: tuple[str, ...]  # GradSPSA additions removed one at a time (gradspsa_a2s.ADDITIONS)
    gammas: tuple[float, ...]  # sharing-loss γ values (0: the ablation; 1e-7: the reference)
    rules: tuple[str, ...]  # layer-pairing rules (losses.SHARING_RULES; "resize": the reference)
    subset_networks: tuple[str, ...]  # networks trained on the random and the stratified subset
    stratified: bool  # whether the stratified subset is trained (else only the random one)
    batches: tuple[int, ...]  # GradSPSA batch sizes at equal epochs (the profile's is the reference)
    max_samples: int | None  # validation and test samples decoded per fusion; None: the whole fold
    smoothings: tuple[str, ...] = SMOOTHINGS
    subset_fraction: float = 0.6  # the thesis's subset (36 / 12 / 12 % of the corpus)
    fold: int | None = None  # the fold evaluated; None: the profile's first
    concurrent_trainings: int | None = None  # trainings at once, a process each; None: the profile's

    def __post_init__(self):
        if not self.seeds or not self.a2s_seeds:
            raise ValueError("BeyondGrid: at least one seed per network")
        bad = [a for a in self.ablations if a not in gradspsa_a2s.ADDITIONS]
        if bad:
            raise ValueError(f"BeyondGrid.ablations: unknown {bad}; choose from {gradspsa_a2s.ADDITIONS}")
        bad = [r for r in self.rules if r not in losses.SHARING_RULES]
        if bad:
            raise ValueError(f"BeyondGrid.rules: unknown {bad}; choose from {losses.SHARING_RULES}")
        if self.concurrent_trainings is not None and self.concurrent_trainings < 1:
            raise ValueError(f"BeyondGrid.concurrent_trainings must be >= 1, got {self.concurrent_trainings}")
        if any(g < 0 for g in self.gammas):
            raise ValueError(f"BeyondGrid.gammas must be >= 0, got {self.gammas}")

    def _base(self, network: str, seed: int = DEFAULT_SEED) -> Variant:
        epochs = self.gradspsa_epochs if network == "gradspsa" else self.a2s_epochs
        return Variant(network, seed=seed, epochs=epochs)

    def reference(self, network: str) -> Variant:
        """The run every experiment compares against: the network at the first seed, nothing else changed."""
        return self._base(network, (self.seeds if network == "gradspsa" else self.a2s_seeds)[0])

    def seed_variants(self, network: str) -> list[Variant]:
        return [self._base(network, s) for s in (self.seeds if network == "gradspsa" else self.a2s_seeds)]

    def ablation_variants(self) -> list[Variant]:
        ref = self.reference("gradspsa")
        return [replace(ref, ablate=a) for a in self.ablations]

    def gamma_variants(self) -> list[Variant]:
        ref = self.reference("gradspsa")
        return [replace(ref, gamma=g) for g in self.gammas]

    def rule_variants(self) -> list[Variant]:
        ref = self.reference("gradspsa")
        return [replace(ref, rule=r) for r in self.rules]

    def subset_variants(self, network: str, kind: str) -> list[Variant]:
        """The network on the ``kind`` ("random" or "stratified") subset, if the grid trains it."""
        if network not in self.subset_networks or (kind == "stratified" and not self.stratified):
            return []
        ref = self.reference(network)
        return [replace(ref, subset=kind, fraction=self.subset_fraction)]

    def batch_variants(self) -> list[Variant]:
        ref = self.reference("gradspsa")
        return [replace(ref, batch=b) for b in self.batches]

    def variants(self) -> list[Variant]:
        """Every training of the grid, the references first (duplicates are trained once by name)."""
        out = self.seed_variants("gradspsa") + self.seed_variants("a2s") + self.ablation_variants()
        out += self.gamma_variants() + self.rule_variants()
        for kind in ("random", "stratified"):
            for network in ("a2s", "gradspsa"):
                out += self.subset_variants(network, kind)
        return out + self.batch_variants()

    def omitted(self, train_profile) -> list[str]:
        """What this grid leaves out of the full one, in words (empty for the full grid)."""
        out = []
        if len(self.seeds) < 3 or len(self.a2s_seeds) < 3:
            out.append(f"seeds: GradSPSA {list(self.seeds)}, baseline {list(self.a2s_seeds)} (full grid: 3 each)")
        for name, epochs, profile_epochs in (("A2S", self.a2s_epochs, train_profile.a2s_epochs),
                                             ("GradSPSA", self.gradspsa_epochs, train_profile.gradspsa_epochs)):
            if epochs is not None and epochs != profile_epochs:
                out.append(f"{name} trained {epochs} epochs here, not the profile's {profile_epochs}")
        missing = [a for a in gradspsa_a2s.ADDITIONS if a not in self.ablations]
        if missing:
            out.append(f"ablations not run: {missing}")
        if set(FULL_GAMMAS) - set(self.gammas) - {0.0, 1e-7}:
            out.append(f"γ sweep: {sorted(set(self.gammas) | {0.0, 1e-7})} of {list(FULL_GAMMAS)}")
        if set(losses.SHARING_RULES) - set(self.rules) - {"resize"}:
            out.append(f"pairing rules: {sorted(set(self.rules) | {'resize'})} of {list(losses.SHARING_RULES)}")
        if not self.subset_networks:
            out.append("60 % subsets not trained")
        elif set(("a2s", "gradspsa")) - set(self.subset_networks):
            out.append(f"60 % subsets trained for {list(self.subset_networks)} only")
        elif not self.stratified:
            out.append("no stratified subset")
        if 8 not in self.batches:
            out.append("batch-size experiment not run")
        if self.max_samples is not None:
            out.append(f"fusion on the first {self.max_samples} validation and test samples, not the whole fold")
        return out


GRIDS: dict[str, BeyondGrid] = {
    "smoke": BeyondGrid(seeds=(DEFAULT_SEED, 43), a2s_seeds=(DEFAULT_SEED, 43), a2s_epochs=None, gradspsa_epochs=None,
                        ablations=gradspsa_a2s.ADDITIONS, gammas=(0.0, 1e-7, 1e-3), rules=("resize", "moments"),
                        subset_networks=("a2s", "gradspsa"), stratified=True, batches=(2, 8), max_samples=8),
    "mini": BeyondGrid(seeds=(DEFAULT_SEED, 43), a2s_seeds=(DEFAULT_SEED, 43), a2s_epochs=None, gradspsa_epochs=None,
                       ablations=gradspsa_a2s.ADDITIONS, gammas=(0.0, 1e-7), rules=("resize",), subset_networks=(),
                       stratified=False, batches=(2,), max_samples=None, concurrent_trainings=2),
    "paper": BeyondGrid(seeds=(DEFAULT_SEED, 43, 44), a2s_seeds=(DEFAULT_SEED, 43, 44), a2s_epochs=None,
                        gradspsa_epochs=None, ablations=gradspsa_a2s.ADDITIONS, gammas=FULL_GAMMAS,
                        rules=losses.SHARING_RULES, subset_networks=("a2s", "gradspsa"), stratified=True,
                        batches=(2, 8), max_samples=None),
}
# paper-dry: the paper grid's code paths at its shapes (its numbers are meaningless, as the profile's)
GRIDS["paper-dry"] = GRIDS["paper"]


def grid_for(profile) -> BeyondGrid:
    """The profile's grid: its ``beyond`` block where it has one, else :data:`GRIDS` by name."""
    block = getattr(profile, "beyond", None)
    if block is not None:
        return block
    if profile.name not in GRIDS:
        raise ValueError(f"grid_for: no notebook-09 grid for profile {profile.name!r}; add one to GRIDS")
    return GRIDS[profile.name]
