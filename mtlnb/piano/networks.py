"""The piano study's networks (Kelz, Böck & Widmer 2019, §IV): hard sharing and cross-stitch, five task heads.

Both take an 11-frame snippet of the semi-logarithmic spectrogram, ``x`` (B, 11, 144) (or (B, 1, 11, 144)), and
return one output per task:

==========  ======  ==================================================================================
task        shape   output
==========  ======  ==================================================================================
onsets      (B, 88) logits; :func:`activations` applies the sigmoid (the loss takes logits, for stability)
frames      (B, 88) logits (the paper's "intermediate frames")
offsets     (B, 88) logits
velocity    (B, 88) straight-through ReLU (forward ``max(0, x)``, backward the identity: it cannot die)
sustain     (B, 1)  straight-through ReLU
==========  ======  ==================================================================================

The stem (ICASSP19, ``rainerkelz/ICASSP19``, scaled up)
-------------------------------------------------------
ICASSP19's hard-sharing net: input BatchNorm2d(1), then blocks "Conv2D C×T×B → ELU → multiplicative Gaussian noise
→ additive Gaussian noise" (valid convolutions, T frames × B bins), three heads::

    stem 30×3×3, 30×1×35, 30×7×1;  head 10×3×3 → flatten → Linear(1060 → 88)
    11×144 → 9×142 → 9×108 → 3×108 → head 1×106           (326,396 parameters with three heads: see tests)

The paper "adopts this architecture, but [makes] a few minor adaptations, such as increasing its depth and the
number of feature maps" (§IV); the kernel sizes were "chosen based on prior knowledge that they lead to acceptable
performance for the smaller model" (§V); the cross-stitch variant reduces "the number of feature maps for the
larger layers ... from 96 to 48" to keep parameter counts "roughly comparable".  Its Figure 3, which would say
exactly which blocks, is not in the text.  **Our reading** (:data:`HARD_SHARING`):

- *more feature maps*: every stem block has 96 maps (the "larger layers"; the heads' 10-map convolutions are the
  small ones and stay as in ICASSP19, in both architectures);
- *more depth*: one more 3×3 block in front, a VGG-style pair of 3×3 convolutions (as in the authors' earlier
  framewise ConvNets, Kelz et al. 2016); to keep the valid convolutions inside the 11-frame context, the temporal block shrinks from 7×1 to
  5×1 (the ICASSP19 kernel types otherwise unchanged).  Shape trace of :data:`HARD_SHARING`::

    x (B, 11, 144) → (B, 1, 11, 144) → BatchNorm2d(1)
    block 96×3×3   → (B, 96, 9, 142)
    block 96×3×3   → (B, 96, 7, 140)
    block 96×1×35  → (B, 96, 7, 106)
    block 96×5×1   → (B, 96, 3, 106)
    head  10×3×3   → (B, 10, 1, 104) → flatten 1,040 → Linear → 88 (velocity: 88, sustain: 1)

Any other reading is one :class:`PianoNetConfig` away (``stem`` lists the blocks; :data:`ICASSP19` is the
original).  Noise: rate 0.1 Gaussian dropout and σ 0.1 additive noise in the stem, rate 0.5 and σ 0.1 in the
heads (ICASSP19's code); active in training mode only.

Cross-stitch (Misra et al. 2016; the paper's §IV and Fig. 4)
------------------------------------------------------------
Five task columns, each the stem (at 48 maps: :data:`CROSS_STITCH`) and its task's head; after every stem block a
cross-stitch unit feeds column m the combination ``z̃_m = Σ_j α_mj z_j`` of all columns' block outputs.

- ``mode="full"``: gradients flow through every term (the original).  ``mode="detached"``: the paper's variant,
  ``z̃_m = α_mm z_m + Σ_{j≠m} α_mj · stop_gradient(z_j)``: no gradient crosses into another task's column, while
  every α still learns from ∂L/∂z̃ (the detached maps are constants, the α are not).
- ``init="balanced"``: α = 1/M everywhere.  ``init="imbalanced"``: α_mm = 0.9, α_mj = 0.1 (the paper's formula
  taken literally: with M = 5 a row sums to 1.3, not 1; Misra's two-task 0.9/0.1 did sum to 1).
- α granularity, where the paper is silent beyond its notation α_l^(m) = [α_l,1^(m) … α_l,M^(m)]: one scalar per
  task pair and unit (``alpha="task"``, the default, the paper's notation), or one per task pair and channel
  (``alpha="channel"``, as some public implementations).
- Implementation: the five columns run as one grouped convolution (channels ``m·C … (m+1)·C − 1`` are column m),
  which is the same function and parameter count as five separate convolutions, in one call.  The input
  BatchNorm2d(1) is shared (it normalises the common input; per column it would only add four affine pairs).

Parameter counts (five heads; :func:`count_parameters`): hard sharing 863,557; cross-stitch at 48 maps 956,825
(+10.8 %: the paper's "roughly comparable"; with α per channel 961,525).  :func:`matched_maps` finds the
cross-stitch width closest to a given count: 44 maps, 864,605 parameters, for the hard net's 863,557.

Initialisation: Glorot (Xavier) uniform weights and zero biases everywhere (the paper, §V); for the grouped
convolutions the fans are those of one column's convolution.  BatchNorm: γ = 1, β = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

TASKS = ("onsets", "frames", "offsets", "velocity", "sustain")  # = mtlnb.piano.targets.TARGET_NAMES
BINARY = ("onsets", "frames", "offsets")  # sigmoid outputs, binary cross-entropy
REGRESSION = ("velocity", "sustain")  # straight-through ReLU outputs, regression loss
ARCHITECTURES = ("hard", "cross_stitch")
MODES = ("full", "detached")
INITS = ("balanced", "imbalanced")
ALPHAS = ("task", "channel")


@dataclass(frozen=True)
class PianoNetConfig:
    """Sizes of a piano network; the same fields serve hard sharing and each cross-stitch column."""

    stem: tuple[tuple[int, int, int], ...] = ((96, 3, 3), (96, 3, 3), (96, 1, 35), (96, 5, 1))  # (maps, frames, bins)
    # per stem block, our reading of the paper's scaled-up ICASSP19 stem (module docstring)
    head: tuple[int, int, int] = (10, 3, 3)  # (maps, frames, bins) of each head's conv: ICASSP19's, kept
    tasks: tuple[str, ...] = TASKS  # heads, in output order; ICASSP19 had only the first three
    n_keys: int = 88  # piano keys: outputs of onsets/frames/offsets/velocity (sustain has one)
    context: int = 11  # input frames c (paper §IV)
    n_bins: int = 144  # input bins b of the semi-logarithmic filterbank
    input_norm: bool = True  # ICASSP19's BatchNorm2d(1) on the raw log-magnitudes: no dataset statistics needed
    stem_dropout: float = 0.1  # Gaussian dropout rate in the stem (ICASSP19): std sqrt(0.1/0.9) = 0.33
    stem_noise: float = 0.1  # additive Gaussian noise σ in the stem (ICASSP19)
    head_dropout: float = 0.5  # Gaussian dropout rate in the heads (ICASSP19): std 1, the strongest regulariser
    head_noise: float = 0.1  # additive Gaussian noise σ in the heads (ICASSP19's code)

    def __post_init__(self) -> None:
        if not self.stem:
            raise ValueError("PianoNetConfig.stem needs at least one block")
        for where, spec in [(f"stem[{i}]", s) for i, s in enumerate(self.stem)] + [("head", self.head)]:
            if len(spec) != 3 or min(spec) < 1:
                raise ValueError(f"PianoNetConfig.{where} must be (maps, frames, bins) >= 1, got {spec}")
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"PianoNetConfig.tasks must be distinct names from {TASKS}, got {self.tasks}")
        for name in ("stem_dropout", "head_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"PianoNetConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        for name in ("stem_noise", "head_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"PianoNetConfig.{name} must be >= 0, got {getattr(self, name)}")
        frames, bins = self.feature_shape
        if frames < self.head[1] or bins < self.head[2] or frames - self.head[1] + 1 != 1:
            raise ValueError(f"PianoNetConfig: the stem leaves {frames}×{bins} (frames × bins) of the "
                             f"{self.context}×{self.n_bins} input; the {self.head[1]}×{self.head[2]} head conv "
                             "must reduce it to exactly one frame")

    @property
    def feature_shape(self) -> tuple[int, int]:
        """(frames, bins) after the stem (valid convolutions)."""
        frames, bins = self.context, self.n_bins
        for _, kt, kf in self.stem:
            frames, bins = frames - kt + 1, bins - kf + 1
        return frames, bins

    @property
    def head_features(self) -> int:
        """Inputs of each head's Linear layer: head maps × bins left after the head conv."""
        return self.head[0] * (self.feature_shape[1] - self.head[2] + 1)

    def output_size(self, task: str) -> int:
        return 1 if task == "sustain" else self.n_keys

    def with_maps(self, maps: int) -> "PianoNetConfig":
        """The same stem with ``maps`` feature maps in every block (e.g. a CPU-sized network)."""
        if maps < 1:
            raise ValueError(f"PianoNetConfig.with_maps: maps must be >= 1, got {maps}")
        return replace(self, stem=tuple((maps, kt, kf) for _, kt, kf in self.stem))


# The original ICASSP19 network (three heads, 326,396 parameters), for comparison and as a test of the building blocks.
ICASSP19 = PianoNetConfig(stem=((30, 3, 3), (30, 1, 35), (30, 7, 1)), tasks=BINARY)
HARD_SHARING = PianoNetConfig()  # the paper's hard-sharing net, our reading (96 maps)
CROSS_STITCH = HARD_SHARING.with_maps(48)  # one cross-stitch column: "reduced from 96 to 48" (§IV)


# ------------------------------------------------------------------------------------------------------- layers


class GaussianDropout(nn.Module):
    """Multiplicative Gaussian noise: ``x · ε``, ε ~ N(1, rate / (1 − rate)) per element, in training mode only.

    Same mean and variance as (inverted) dropout at ``rate`` (Srivastava et al. 2014; Keras' GaussianDropout).
    """

    def __init__(self, rate: float):
        super().__init__()
        if not 0 <= rate < 1:
            raise ValueError(f"GaussianDropout: rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.std = math.sqrt(rate / (1 - rate))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.std == 0:
            return x
        return x * (1 + self.std * torch.randn_like(x))

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class GaussianNoise(nn.Module):
    """Additive Gaussian noise ``x + σ · N(0, 1)``, in training mode only."""

    def __init__(self, sigma: float):
        super().__init__()
        if sigma < 0:
            raise ValueError(f"GaussianNoise: sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.sigma == 0:
            return x
        return x + self.sigma * torch.randn_like(x)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class _StraightThroughReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad  # the gradient of the identity: a unit pushed below zero still learns (paper Fig. 3d)


def straight_through_relu(x: torch.Tensor) -> torch.Tensor:
    """``max(0, x)`` forward, identity backward (Bengio et al. 2013's straight-through idea; paper §IV)."""
    return _StraightThroughReLU.apply(x)


class StraightThroughReLU(nn.Module):
    """Module form of :func:`straight_through_relu`: the velocity and sustain outputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return straight_through_relu(x)


def glorot_uniform_(weight: torch.Tensor, columns: int = 1) -> torch.Tensor:
    """Glorot/Xavier uniform init in place, with the fans of *one* of ``columns`` stacked convolutions.

    Parameters
    ----------
    weight : Tensor (out, in_per_group, *kernel) or (out, in)
        A Conv2d or Linear weight.  For ``columns`` task columns stacked along ``out`` (a grouped convolution, or
        one convolution of the shared input into every column), fan_out is that of one column: ``out / columns``
        times the kernel size; fan_in is ``in_per_group`` times the kernel size, as for one column.
    columns : int
    """
    if weight.shape[0] % columns:
        raise ValueError(f"glorot_uniform_: {weight.shape[0]} outputs do not split into {columns} columns")
    receptive = math.prod(weight.shape[2:])
    fan_in, fan_out = weight.shape[1] * receptive, weight.shape[0] // columns * receptive
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


def _noise(dropout: float, sigma: float) -> list[nn.Module]:
    return [GaussianDropout(dropout), GaussianNoise(sigma)]


def _block(c_in: int, c_out: int, kt: int, kf: int, dropout: float, sigma: float, columns: int = 1,
           groups: int = 1) -> nn.Sequential:
    """Conv2D C×T×B → ELU → multiplicative noise → additive noise (paper Fig. 3a/b), valid convolution."""
    conv = nn.Conv2d(c_in, c_out, (kt, kf), groups=groups)
    glorot_uniform_(conv.weight, columns)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv, nn.ELU(), *_noise(dropout, sigma))


class TaskHead(nn.Module):
    """One task's head: Conv 10×3×3 → ELU → noise → flatten → Linear → (sigmoid logits | straight-through ReLU)."""

    def __init__(self, config: PianoNetConfig, task: str, in_maps: int):
        super().__init__()
        maps, kt, kf = config.head
        self.task = task
        self.conv = _block(in_maps, maps, kt, kf, config.head_dropout, config.head_noise)
        self.linear = nn.Linear(config.head_features, config.output_size(task))
        glorot_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = self.linear(self.conv(z).flatten(1))
        return straight_through_relu(y) if self.task in REGRESSION else y


def _as_input(x: torch.Tensor, config: PianoNetConfig) -> torch.Tensor:
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, config.context, config.n_bins):
        raise ValueError(f"piano network: expected input (B, {config.context}, {config.n_bins}) or "
                         f"(B, 1, {config.context}, {config.n_bins}), got {tuple(x.shape)}")
    return x


class _PianoNet(nn.Module):
    """What both architectures share: the input check and :meth:`predict`."""

    config: PianoNetConfig

    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Outputs in [0, 1]-style units: sigmoid probabilities for the binary tasks, the ReLU outputs otherwise."""
        return activations(self(x))


class HardSharingNet(_PianoNet):
    """Hard parameter sharing: one stem, one head per task (paper Fig. 1b / 3).

    Parameters
    ----------
    config : PianoNetConfig
        Default :data:`HARD_SHARING` (the paper's, our reading); :data:`ICASSP19` rebuilds the original.

    Forward: ``x`` (B, 11, 144) float → dict task → (B, 88) or (B, 1) (logits for the binary tasks).
    """

    def __init__(self, config: PianoNetConfig = HARD_SHARING):
        super().__init__()
        self.config = config
        self.input_norm = nn.BatchNorm2d(1) if config.input_norm else nn.Identity()
        blocks, c_in = [], 1
        for maps, kt, kf in config.stem:
            blocks.append(_block(c_in, maps, kt, kf, config.stem_dropout, config.stem_noise))
            c_in = maps
        self.stem = nn.Sequential(*blocks)
        self.heads = nn.ModuleDict({t: TaskHead(config, t, c_in) for t in config.tasks})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.stem(self.input_norm(_as_input(x, self.config)))
        return {t: head(z) for t, head in self.heads.items()}


class CrossStitchUnit(nn.Module):
    """``z̃_m = Σ_j α_mj z_j`` over M task columns stacked along channels (B, M·C, H, W).

    Parameters
    ----------
    n_tasks, channels : int
        M columns of C maps each.
    mode : {"full", "detached"}
        "detached" stops the gradient of every cross-task term ``α_mj z_j`` (j ≠ m) at ``z_j``; α still learns.
    init : {"balanced", "imbalanced"}
        α = 1/M, or α_mm = 0.9 and α_mj = 0.1 (the paper's formula).
    alpha : {"task", "channel"}
        One α per task pair (M, M), or per task pair and channel (M, M, C).
    """

    def __init__(self, n_tasks: int, channels: int, mode: str = "full", init: str = "balanced",
                 alpha: str = "task"):
        super().__init__()
        for name, value, allowed in (("mode", mode, MODES), ("init", init, INITS), ("alpha", alpha, ALPHAS)):
            if value not in allowed:
                raise ValueError(f"CrossStitchUnit: {name} must be one of {allowed}, got {value!r}")
        self.n_tasks, self.channels, self.mode, self.init, self.granularity = n_tasks, channels, mode, init, alpha
        eye = torch.eye(n_tasks)
        a = torch.full((n_tasks, n_tasks), 1.0 / n_tasks) if init == "balanced" else 0.9 * eye + 0.1 * (1 - eye)
        if alpha == "channel":
            a = a[:, :, None].repeat(1, 1, channels)
        self.alpha = nn.Parameter(a)
        self.register_buffer("_off", (1 - eye)[:, :, None], persistent=False)  # masks the cross-task terms

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, mc, h, w = z.shape
        m, c = self.n_tasks, self.channels
        if mc != m * c:
            raise ValueError(f"CrossStitchUnit: expected {m}·{c} = {m * c} channels, got {mc}")
        zs = z.view(b, m, c, h, w)
        a = self.alpha if self.granularity == "channel" else self.alpha[:, :, None].expand(m, m, c)
        if self.mode == "full":
            out = torch.einsum("mjc,bjchw->bmchw", a, zs)
        else:
            diag = torch.diagonal(a, dim1=0, dim2=1).transpose(0, 1)  # (M, C): α_mm per channel
            cross = torch.einsum("mjc,bjchw->bmchw", a * self._off, zs.detach())
            out = diag[None, :, :, None, None] * zs + cross
        return out.reshape(b, mc, h, w)

    def extra_repr(self) -> str:
        return f"tasks={self.n_tasks}, channels={self.channels}, mode={self.mode}, init={self.init}, " \
               f"alpha={self.granularity}"


class CrossStitchNet(_PianoNet):
    """One stem column per task, a cross-stitch unit after every stem block, each column's own head (Fig. 4).

    Parameters
    ----------
    config : PianoNetConfig
        One column's sizes; default :data:`CROSS_STITCH` (48 maps).  ``config.tasks`` are the columns.
    mode : {"full", "detached"}
    init : {"balanced", "imbalanced"}
    alpha : {"task", "channel"}
        See :class:`CrossStitchUnit`.

    Forward: ``x`` (B, 11, 144) → dict task → (B, 88) or (B, 1), as :class:`HardSharingNet`.
    """

    def __init__(self, config: PianoNetConfig = CROSS_STITCH, mode: str = "full", init: str = "balanced",
                 alpha: str = "task"):
        super().__init__()
        self.config, self.mode, self.init = config, mode, init
        m = len(config.tasks)
        self.input_norm = nn.BatchNorm2d(1) if config.input_norm else nn.Identity()
        blocks, units, c_in = [], [], 1
        for i, (maps, kt, kf) in enumerate(config.stem):
            # Block 0 maps the shared 1-channel input into all M columns (an ordinary conv with M·C outputs);
            # later blocks are grouped: column m sees only its own (stitched) maps.
            groups = 1 if i == 0 else m
            blocks.append(_block(c_in * (1 if i == 0 else m), maps * m, kt, kf, config.stem_dropout,
                                 config.stem_noise, columns=m, groups=groups))
            units.append(CrossStitchUnit(m, maps, mode, init, alpha))
            c_in = maps
        self.blocks, self.units = nn.ModuleList(blocks), nn.ModuleList(units)
        self.heads = nn.ModuleDict({t: TaskHead(config, t, c_in) for t in config.tasks})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.input_norm(_as_input(x, self.config))
        for block, unit in zip(self.blocks, self.units):
            z = unit(block(z))
        columns = z.chunk(len(self.config.tasks), dim=1)
        return {t: head(columns[i]) for i, (t, head) in enumerate(self.heads.items())}


# ----------------------------------------------------------------------------------------------------- helpers


def activations(outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Network outputs → predictions: sigmoid for onsets/frames/offsets, the (already ReLU'd) regression as is."""
    return {t: torch.sigmoid(y) if t in BINARY else y for t, y in outputs.items()}


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (α of the cross-stitch units and BatchNorm's γ, β included)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True)
class ModelSpec:
    """Which network to build: what a run of the study grid names."""

    arch: str = "hard"  # "hard" (Tables I/II) or "cross_stitch" (Tables III/IV)
    mode: str = "full"  # cross-stitch only: "full" or "detached"
    init: str = "balanced"  # cross-stitch only: "balanced" or "imbalanced"
    maps: int | None = None  # stem maps of the hard net; None = the paper's 96.  Cross-stitch gets half (96 -> 48)
    alpha: str = "task"  # cross-stitch only: α per task pair ("task") or per pair and channel ("channel")
    stem: tuple[tuple[int, int, int], ...] | None = None  # another reading of the scaled-up stem (hard net's maps);
    # None = ours (HARD_SHARING.stem).  Cross-stitch columns get it with half the maps, as 96 -> 48.

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"ModelSpec.arch must be one of {ARCHITECTURES}, got {self.arch!r}")
        if self.mode not in MODES or self.init not in INITS or self.alpha not in ALPHAS:
            raise ValueError(f"ModelSpec: mode/init/alpha must be in {MODES}/{INITS}/{ALPHAS}, "
                             f"got {self.mode!r}/{self.init!r}/{self.alpha!r}")
        if self.maps is not None and self.maps < 2:
            raise ValueError(f"ModelSpec.maps must be None or >= 2, got {self.maps}")
        if self.stem is not None:
            PianoNetConfig(stem=tuple(tuple(b) for b in self.stem))  # validates the shapes

    def config(self) -> PianoNetConfig:
        """The network's sizes: the hard net's stem, or a cross-stitch column's (every block at half the maps)."""
        stem = self.stem or HARD_SHARING.stem
        if self.maps is not None:
            stem = tuple((self.maps, kt, kf) for _, kt, kf in stem)
        if self.arch == "cross_stitch":
            stem = tuple((max(1, c // 2), kt, kf) for c, kt, kf in stem)
        return replace(HARD_SHARING, stem=stem)

    def build(self) -> _PianoNet:
        """A freshly initialised network (seed torch before calling it for a reproducible initialisation)."""
        if self.arch == "hard":
            return HardSharingNet(self.config())
        return CrossStitchNet(self.config(), self.mode, self.init, self.alpha)


def matched_maps(target: int, config: PianoNetConfig = CROSS_STITCH, mode: str = "full",
                 alpha: str = "task") -> tuple[int, int]:
    """The cross-stitch stem width whose parameter count is closest to ``target``.

    Returns
    -------
    (maps, parameters)
    """
    best = None
    for maps in range(1, max(c for c, _, _ in config.stem) * 2 + 1):
        n = count_parameters(CrossStitchNet(config.with_maps(maps), mode, "balanced", alpha))
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (maps, n)
        if n > target:
            break
    return best
