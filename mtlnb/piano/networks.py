"""The piano study's hard-sharing network and the blocks of both architectures (Kelz, Böck & Widmer 2019, §IV).

Both architectures (hard sharing here, cross-stitch in :mod:`mtlnb.piano.cross_stitch`) take an 11-frame snippet
of the semi-logarithmic spectrogram, ``x`` (B, 11, 144) (or (B, 1, 11, 144)), and return one output per task:

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
  framewise ConvNets, Kelz et al. 2016); to keep the valid convolutions inside the 11-frame context, the temporal
  block shrinks from 7×1 to 5×1 (the ICASSP19 kernel types otherwise unchanged).  Shape trace of :data:`HARD_SHARING`::

    x (B, 11, 144) → (B, 1, 11, 144) → BatchNorm2d(1)
    block 96×3×3   → (B, 96, 9, 142)
    block 96×3×3   → (B, 96, 7, 140)
    block 96×1×35  → (B, 96, 7, 106)
    block 96×5×1   → (B, 96, 3, 106)
    head  10×3×3   → (B, 10, 1, 104) → flatten 1,040 → Linear → 88 (velocity: 88, sustain: 1)

Any other reading is one :class:`PianoNetConfig` away (``stem`` lists the blocks; :data:`ICASSP19` is the
original).  Noise: rate 0.1 Gaussian dropout and σ 0.1 additive noise in the stem, rate 0.5 and σ 0.1 in the
heads (ICASSP19's code); active in training mode only.

Cross-stitch networks (Misra et al. 2016; the paper's Fig. 4) are built from this module's blocks in
:mod:`mtlnb.piano.cross_stitch`.

Parameter count (five heads; :func:`count_parameters`): hard sharing 863,557.

Initialisation: Glorot (Xavier) uniform weights and zero biases everywhere (the paper, §V); for convolutions that
stack several task columns (:func:`glorot_uniform_`'s ``columns``) the fans are those of one column's convolution.
BatchNorm: γ = 1, β = 0.

Two paths, one function
-----------------------
``forward`` is the fast path; :meth:`PianoNet.reference` runs the plain modules one by one (``BatchNorm2d``, then
per block ``Conv2d → ELU → GaussianDropout → GaussianNoise``), the readable definition that the tests compare the
fast path against (same outputs and gradients to float rounding, the same random numbers for a seed).  On one CPU
core a training update of the mini-sized networks (16 maps, batch 64) takes about half of the plain modules'
time (``benchmarks/bench_piano_training.py``).  What it does differently, and why:

- **The long convolution through the FFT.** oneDNN's backward pass of the 1×35 convolution (a long kernel along
  the innermost, contiguous bins axis) is several times slower than its forward pass.  On the CPU, :func:`conv2d`
  computes every (1 × kf) convolution with kf >= :data:`FFT_MIN_TAPS` as products of real FFTs along the bins
  (length :func:`fast_fft_size`, 144 for 140 bins) and one batched complex matrix product per frequency over the
  channels, forward and backward (:class:`_BinsFFTConv`): about ten times fewer multiply-adds than the direct
  convolution, the same values to float rounding.  The other convolutions (3×3, 5×1, the heads) stay oneDNN's, in
  the ordinary layout, so every activation is contiguous (B, C, frames, bins).  (An earlier version ran all
  convolutions with frames and bins swapped in memory, which made the 1×35 backward pass ~3× faster but cost a
  transposing copy of every noise draw.)
- **Input BatchNorm folded into the first convolution.** ``conv(γ·x̂ + β) = conv(x̂; γ·W) + β·ΣW`` for a valid
  convolution, so the normalised input x̂ needs no gradient and the first convolution skips its input-gradient
  pass; γ and β get exactly the gradients they get through the BatchNorm module.  Running statistics are updated
  as ``BatchNorm2d`` does (:func:`normalised_input`).
- **ELU and both noise layers in one autograd node** (:func:`elu_noise`): ``ELU(c) · (1 + s·ε₁) + σ·ε₂`` with the
  noise drawn exactly as the two layers draw it (ε₁, then ε₂, in the activation's logical order), saving only what
  the backward pass needs.
- **The noise from a table on the CPU** (:class:`NoiseTable`, ``PianoNetConfig.noise``).  Two normal numbers per
  activation from torch's CPU generator (a sequential Mersenne Twister) were a quarter of a fast mini update; a
  window of a fixed table at a random offset gives the same distribution within every draw at the cost of one
  random number.  This changes the noise stream (not its distribution within a draw): ``noise="generator"`` draws
  fresh numbers as ICASSP19 does, and is what a GPU uses by default.  Both paths draw from the same source, so the
  reference comparison holds for either.
- **The heads' convolutions in one call** (all heads read the same stem output), their noise drawn head by head as
  the modules would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

TASKS = ("onsets", "frames", "offsets", "velocity", "sustain")  # = mtlnb.piano.targets.TARGET_NAMES
BINARY = ("onsets", "frames", "offsets")  # sigmoid outputs, binary cross-entropy
REGRESSION = ("velocity", "sustain")  # straight-through ReLU outputs, regression loss
NOISE_SOURCES = ("auto", "table", "generator")  # where the noise layers' normal numbers come from (standard_normal)
NOISE_TABLE_SIZE = 1 << 25  # normal numbers in a NoiseTable: 33.5 M, 128 MiB of float32, ~0.1 s to draw


def checked_noise_source(noise: str, where: str = "piano network") -> str:
    """``noise`` if it is one of :data:`NOISE_SOURCES`, else ``ValueError`` naming ``where``."""
    if noise not in NOISE_SOURCES:
        raise ValueError(f"{where}: noise must be one of {NOISE_SOURCES}, got {noise!r}")
    return noise


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
    noise: str = "auto"  # where the noise layers' normal numbers come from (NOISE_SOURCES, :func:`standard_normal`)

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
        checked_noise_source(self.noise, "PianoNetConfig")
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


# ------------------------------------------------------------------------------------------------- the noise


class NoiseTable:
    """A fixed table of standard normal numbers; every draw is a window of it at a random offset.

    The noise layers of a mini-sized network draw about two normal numbers per activation, ~7.5 M per update
    of the 16-map hard-sharing net, and torch's CPU generator (a sequential Mersenne Twister, ~2.8 ns a number)
    spends a quarter of the update on them.  A window of a table drawn once costs one random offset.  Within a
    draw the numbers are independent N(0, 1), as fresh ones; across draws they are shifted copies of the same
    table (offset uniform over a circular table, so every entry is equally likely at every position), the noise
    table of Salimans et al. 2017 ("Evolution strategies as a scalable alternative to reinforcement learning",
    §2.3), which shares one table between its workers in the same way.  What changes against fresh draws is only
    that two draws can share numbers at shifted positions; a draw may take at most half the table.

    Parameters
    ----------
    seed : int
        The table's numbers: ``torch.randn(size)`` from a generator seeded with it.
    size : int
        Numbers in the table.
    device, dtype
        Where the windows are returned (the table is drawn on the CPU, the same on every device).
    """

    def __init__(self, seed: int, size: int = NOISE_TABLE_SIZE, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        if size < 2:
            raise ValueError(f"NoiseTable: size must be >= 2, got {size}")
        self.seed, self.size = int(seed), int(size)
        generator = torch.Generator().manual_seed(self.seed)
        self._values = torch.randn(self.size, generator=generator).to(device=device, dtype=dtype)

    def holds(self, n: int) -> bool:
        """Whether a draw of ``n`` numbers fits: at most half the table."""
        return n <= self.size // 2

    def window(self, n: int) -> torch.Tensor:
        """``n`` consecutive numbers of the circular table from an offset drawn by torch's default generator.

        Returns a read-only view (the table's own memory: never write into it), shape (n,).
        """
        if not self.holds(n):
            raise ValueError(f"NoiseTable: a draw of {n:,} numbers needs a table of at least {2 * n:,} "
                             f"(this one has {self.size:,}); use a larger table or noise='generator'")
        if self._values.numel() < self.size + n:  # the table's head repeated after its end: circular windows
            self._values = torch.cat([self._values[:self.size], self._values[:n]])
        offset = int(torch.randint(self.size, ()))
        return self._values[offset:offset + n]


_TABLES: dict[tuple, NoiseTable] = {}  # the one table in use, keyed by (seed, device, dtype)


def noise_table(like: torch.Tensor) -> NoiseTable:
    """The :class:`NoiseTable` of torch's current seed (``torch.manual_seed``) on ``like``'s device and dtype,
    drawn on first use and kept (one at a time): seeding torch seeds both the table and the offsets."""
    key = (torch.initial_seed(), like.device, like.dtype)
    if key not in _TABLES:
        _TABLES.clear()
        _TABLES[key] = NoiseTable(key[0], size=NOISE_TABLE_SIZE, device=like.device, dtype=like.dtype)
    return _TABLES[key]


def resolved_source(noise: str, like: torch.Tensor) -> str:
    """``"auto"`` → ``"table"`` for a draw like ``like`` on the CPU (where drawing is a quarter of an update) that
    fits the table (:meth:`NoiseTable.holds`: the mini networks' do; a paper-sized cross-stitch stem's first block,
    ~20 M numbers, does not), ``"generator"`` otherwise (a GPU's Philox generator draws at memory speed); the other
    sources as they are."""
    if noise == "auto":
        return "table" if like.device.type == "cpu" and like.numel() <= NOISE_TABLE_SIZE // 2 else "generator"
    return checked_noise_source(noise)


def standard_normal(like: torch.Tensor, noise: str = "auto") -> torch.Tensor:
    """Independent N(0, 1) numbers of ``like``'s shape, dtype and device, filled in its logical order.

    ``noise``: ``"generator"`` draws them fresh from torch's generator (``torch.randn``: ICASSP19's noise layers
    draw fresh numbers from Theano's); ``"table"`` takes a window of :func:`noise_table` (:class:`NoiseTable`:
    the same distribution within a draw, several times faster on a CPU); ``"auto"`` (the default) the table on the
    CPU where the draw fits it, and the generator elsewhere (:func:`resolved_source`).  A table window is a view of
    the table: read it, never write into it.
    """
    if resolved_source(noise, like) == "generator":
        return torch.randn(like.shape, dtype=like.dtype, device=like.device)
    return noise_table(like).window(like.numel()).view(like.shape)


# ------------------------------------------------------------------------------------------------------- layers


class GaussianDropout(nn.Module):
    """Multiplicative Gaussian noise: ``x · ε``, ε ~ N(1, rate / (1 − rate)) per element, in training mode only.

    Same mean and variance as (inverted) dropout at ``rate`` (Srivastava et al. 2014; Keras' GaussianDropout).
    ``noise``: where the normal numbers come from (:func:`standard_normal`).
    """

    def __init__(self, rate: float, noise: str = "auto"):
        super().__init__()
        if not 0 <= rate < 1:
            raise ValueError(f"GaussianDropout: rate must be in [0, 1), got {rate}")
        self.rate, self.noise = float(rate), checked_noise_source(noise)
        self.std = math.sqrt(rate / (1 - rate))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.std == 0:
            return x
        return x * (1 + self.std * standard_normal(x, self.noise))

    def extra_repr(self) -> str:
        return f"rate={self.rate}, noise={self.noise}"


class GaussianNoise(nn.Module):
    """Additive Gaussian noise ``x + σ · N(0, 1)``, in training mode only (``noise``: :func:`standard_normal`)."""

    def __init__(self, sigma: float, noise: str = "auto"):
        super().__init__()
        if sigma < 0:
            raise ValueError(f"GaussianNoise: sigma must be >= 0, got {sigma}")
        self.sigma, self.noise = float(sigma), checked_noise_source(noise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.sigma == 0:
            return x
        return x + self.sigma * standard_normal(x, self.noise)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, noise={self.noise}"


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


def conv_block(c_in: int, c_out: int, kt: int, kf: int, dropout: float, sigma: float, columns: int = 1,
               groups: int = 1, noise: str = "auto") -> nn.Sequential:
    """Conv2D C×T×B → ELU → multiplicative noise → additive noise (paper Fig. 3a/b), valid convolution.

    Shapes: ``(B, c_in, frames, bins)`` → ``(B, c_out, frames − kt + 1, bins − kf + 1)``.  ``columns`` task
    columns stacked along the output channels (:func:`glorot_uniform_`) and ``groups`` serve the cross-stitch
    network, whose columns run as one grouped convolution; ``noise`` is the noise layers' source.
    """
    conv = nn.Conv2d(c_in, c_out, (kt, kf), groups=groups)
    glorot_uniform_(conv.weight, columns)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv, nn.ELU(), GaussianDropout(dropout, noise), GaussianNoise(sigma, noise))


# ------------------------------------------------------------------------------------------- the fast path


FFT_MIN_TAPS = 16  # a (1 × kf) convolution with kf >= this runs through the FFT on the CPU (module docstring)


def fast_fft_size(n: int) -> int:
    """The smallest 2^a · 3^b >= ``n``: a length pocketfft transforms fast (140 → 144, about 4× faster here)."""
    best = 1 << max(n - 1, 0).bit_length()
    p3 = 1
    while p3 < best:
        p2 = p3
        while p2 < n:
            p2 *= 2
        best = min(best, p2)
        p3 *= 3
    return best


def _to_mix(spec: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, G·C, T, F) spectra → (F·G, B·T, C): one (B·T × C) matrix per frequency and group, for ``bmm``."""
    b, gc, t, f = spec.shape
    return spec.view(b, groups, gc // groups, t, f).permute(4, 1, 0, 3, 2).reshape(f * groups, b * t, gc // groups)


def _unmix_inverse(mixed: torch.Tensor, n: int, keep: int, b: int, t: int, groups: int) -> torch.Tensor:
    """(F·G, B·T, C) spectra → the first ``keep`` bins of their inverse FFT, as a (B, G, C, T, keep) view.

    The inverse runs along the spectra's outer axis, so that no complex tensor is transposed: the one transposing
    copy left is the caller's, of the real, cropped result (fused with the bias where there is one).
    """
    fg, _, c = mixed.shape
    real = torch.fft.irfft(mixed.view(fg // groups, groups, b, t, c), n=n, dim=0)[:keep]  # (keep, G, B, T, C)
    return real.permute(2, 1, 4, 3, 0)


class _BinsFFTConv(torch.autograd.Function):
    """A valid (1 × K) convolution (cross-correlation along bins) through real FFTs of length ``n``.

    Forward ``Y_f = X_f · conj(W_f)`` summed over input channels (per group), then the first ``W − K + 1`` bins
    of the inverse; backward ``dX_f = G_f · W_f`` (a full convolution, ``W`` bins) and ``dW_f = Σ conj(G_f) · X_f``
    (a correlation, ``K`` taps).  With ``n >= W`` none of the three wraps around.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, groups: int, n: int):
        b, _, t, w = x.shape
        k = weight.shape[-1]
        xm = _to_mix(torch.fft.rfft(x, n=n), groups)  # (F·G, B·T, Cg)
        wf = torch.fft.rfft(weight[:, :, 0], n=n)  # (C_out, Cg, F), C_out = G·Og
        c_out, cg, f = wf.shape
        wm = wf.view(groups, c_out // groups, cg, f).permute(3, 0, 2, 1).reshape(f * groups, cg, c_out // groups)
        ym = torch.bmm(xm, wm.conj().resolve_conj())  # (F·G, B·T, Og)
        y = _unmix_inverse(ym, n, w - k + 1, b, t, groups)  # a (B, G, Og, T, W − K + 1) view
        ctx.save_for_backward(xm, wm)
        ctx.shape, ctx.groups, ctx.n, ctx.has_bias = (b, t, w, k), groups, n, bias is not None
        out = torch.empty((b, c_out, t, w - k + 1), dtype=y.dtype, device=y.device)
        if bias is None:
            return out.view(y.shape).copy_(y).view(out.shape)
        return torch.add(y, bias.view(1, groups, -1, 1, 1), out=out.view(y.shape)).view(out.shape)

    @staticmethod
    def backward(ctx, grad):
        xm, wm = ctx.saved_tensors
        (b, t, w, k), groups, n = ctx.shape, ctx.groups, ctx.n
        gm = _to_mix(torch.fft.rfft(grad, n=n), groups)  # (F·G, B·T, Og)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            dx = _unmix_inverse(torch.bmm(gm, wm.transpose(1, 2)), n, w, b, t, groups)
            grad_x = dx.contiguous().view(b, -1, t, w)
        if ctx.needs_input_grad[1]:
            dw = torch.bmm(xm.mH, gm).conj().resolve_conj()  # Σ_{B·T} conj(G_f) X_f, as (F·G, Cg, Og)
            f = dw.shape[0] // groups
            dw = dw.view(f, groups, dw.shape[1], dw.shape[2]).permute(1, 3, 2, 0)  # (G, Og, Cg, F)
            grad_w = torch.fft.irfft(dw.reshape(-1, dw.shape[2], 1, f), n=n)[..., :k].contiguous()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int = 1) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, groups=groups)`` (valid), with a long (1 × kf) kernel through the FFT on the CPU.

    Parameters
    ----------
    x : Tensor (B, C_in, frames, bins)
    weight : Tensor (C_out, C_in / groups, kt, kf)
    bias : Tensor (C_out,) or None

    Returns
    -------
    Tensor (B, C_out, frames − kt + 1, bins − kf + 1), contiguous; the values of ``F.conv2d`` to float rounding.
    Why the FFT: the module docstring ("The long convolution through the FFT").
    """
    kt, kf = weight.shape[-2:]
    if x.device.type != "cpu" or kt != 1 or kf < FFT_MIN_TAPS:  # cuDNN chooses its own algorithms
        return F.conv2d(x, weight, bias, groups=groups)
    return _BinsFFTConv.apply(x.contiguous(), weight, bias, groups, fast_fft_size(x.shape[-1]))


def noise_factors(c: torch.Tensor, dropout_std: float, sigma: float, noise: str = "auto") -> tuple[
        torch.Tensor | None, torch.Tensor | None]:
    """The random numbers of :class:`GaussianDropout` (std ``dropout_std``) and :class:`GaussianNoise` (σ) for an
    activation like ``c``, drawn as the two layers draw them: ``1 + s·ε₁`` first, then ``σ·ε₂``, each from
    ``noise``'s source (:func:`standard_normal`) in the logical order of ``c.shape`` (a layer with s = 0 or σ = 0
    draws nothing), then stored, new, in ``c``'s memory order so that the elementwise work reads all three alike.

    Returns
    -------
    (scale, shift) : Tensor of ``c.shape`` or None each; fresh memory (the caller may write into them)
    """
    fresh = resolved_source(noise, c) == "generator"

    def draw(times: float, plus: float = 0.0) -> torch.Tensor:
        if fresh and c.is_contiguous():  # one pass: plus + times·ε, as the layer's 1 + s·ε (to rounding)
            return torch.empty_like(c).normal_(plus, times)
        # A table window is the table itself, and a generator's draw is in the logical order: one pass writes
        # times·ε into new memory in c's order (c's memory order where c is dense, else the logical one).
        e = torch.mul(standard_normal(c, noise), times, out=torch.empty_like(c))
        return e.add_(plus) if plus else e

    scale = draw(dropout_std, 1.0) if dropout_std else None
    shift = draw(sigma) if sigma else None
    return scale, shift


class _EluNoise(torch.autograd.Function):
    """``ELU(c) · scale + shift`` in one node: saves ELU(c) and ``scale``, as the unfused layers' autograd would."""

    @staticmethod
    def forward(ctx, c: torch.Tensor, scale: torch.Tensor | None, shift: torch.Tensor | None) -> torch.Tensor:
        z = F.elu(c)
        if scale is None:
            y = z if shift is None else shift.add_(z)
        else:
            y = z * scale if shift is None else shift.addcmul_(z, scale)
        ctx.save_for_backward(z, scale)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        z, scale = ctx.saved_tensors
        # ELU'(c) from its result: 1 where z > 0, z + 1 elsewhere (alpha 1), as autograd's own ELU backward
        if scale is None:
            return torch.ops.aten.elu_backward(grad, 1.0, 1, 1, True, z), None, None
        g = grad * scale
        return torch.ops.aten.elu_backward.grad_input(g, 1.0, 1, 1, True, z, grad_input=g), None, None


def elu_noise(c: torch.Tensor, dropout_std: float, sigma: float, training: bool, noise: str = "auto") -> torch.Tensor:
    """``GaussianNoise(σ)(GaussianDropout(rate)(ELU(c)))`` (``dropout_std`` = sqrt(rate / (1 − rate))) in one
    autograd node, the same random numbers drawn (from ``noise``'s source); in eval mode ``ELU(c)``.  Shapes:
    (B, C, H, W) → the same."""
    if not training:
        return F.elu(c)
    return _EluNoise.apply(c, *noise_factors(c, dropout_std, sigma, noise))


def block_parts(block: nn.Sequential) -> tuple[nn.Conv2d, float, float, str]:
    """The convolution, dropout std, noise σ and noise source of a :func:`conv_block`."""
    conv, _, dropout, noise = block
    return conv, dropout.std, noise.sigma, noise.noise


def normalised_input(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` normalised as ``norm`` (a BatchNorm2d(1)) does, *without* its affine γ, β (folded into the first
    convolution by :func:`first_conv_params`); running statistics updated as the module updates them."""
    if not isinstance(norm, nn.BatchNorm2d):
        return x
    momentum = 0.0 if norm.momentum is None else norm.momentum
    if norm.training and norm.track_running_stats and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(1)
        if norm.momentum is None:  # cumulative moving average, as BatchNorm2d
            momentum = 1.0 / float(norm.num_batches_tracked)
    use_batch = norm.training or norm.running_mean is None
    return F.batch_norm(x, norm.running_mean if not norm.training or norm.track_running_stats else None,
                        norm.running_var if not norm.training or norm.track_running_stats else None,
                        None, None, use_batch, momentum, norm.eps)


def first_conv_params(norm: nn.Module, conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``conv ∘ affine(γ, β)`` for a one-channel input norm: ``(γ·W, b + β·ΣW)`` (exact for a
    valid convolution, where every output sees the whole kernel); ``conv``'s own when ``norm`` has no affine."""
    if not isinstance(norm, nn.BatchNorm2d) or not norm.affine:
        return conv.weight, conv.bias
    if norm.num_features != 1:
        raise ValueError(f"first_conv_params: the input norm must have one channel, got {norm.num_features}")
    return conv.weight * norm.weight, conv.bias + norm.bias * conv.weight.sum(dim=(1, 2, 3))


def heads_forward(heads: nn.ModuleDict, z: torch.Tensor, training: bool, groups: int = 1) -> dict[str, torch.Tensor]:
    """Every :class:`TaskHead` of ``heads`` on ``z``, their convolutions in one call.

    Parameters
    ----------
    heads : ModuleDict task -> TaskHead
        Their outputs keep this order (and so do their random numbers).
    z : Tensor (B, C, frames, bins)
        The stem output: with ``groups = 1`` every head reads all of it (hard sharing); with ``groups = M`` head m
        reads channels ``m·C/M … (m+1)·C/M − 1`` (the cross-stitch columns).
    """
    blocks = [h.conv for h in heads.values()]
    convs = [block_parts(b)[0] for b in blocks]
    weight = torch.cat([c.weight for c in convs])
    bias = torch.cat([c.bias for c in convs])
    c = F.conv2d(z, weight, bias, groups=groups)
    parts = c.split([cv.out_channels for cv in convs], dim=1)
    out = {}
    for (task, head), part, block in zip(heads.items(), parts, blocks):  # head by head: the modules' noise order
        _, std, sigma, noise = block_parts(block)
        y = head.linear(elu_noise(part, std, sigma, training, noise).flatten(1))
        out[task] = straight_through_relu(y) if task in REGRESSION else y
    return out


class TaskHead(nn.Module):
    """One task's head: Conv 10×3×3 → ELU → noise → flatten → Linear → (sigmoid logits | straight-through ReLU)."""

    def __init__(self, config: PianoNetConfig, task: str, in_maps: int):
        super().__init__()
        maps, kt, kf = config.head
        self.task = task
        self.conv = conv_block(in_maps, maps, kt, kf, config.head_dropout, config.head_noise, noise=config.noise)
        self.linear = nn.Linear(config.head_features, config.output_size(task))
        glorot_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = self.linear(self.conv(z).flatten(1))
        return straight_through_relu(y) if self.task in REGRESSION else y


def as_input(x: torch.Tensor, config: PianoNetConfig) -> torch.Tensor:
    """``x`` (B, context, n_bins) or (B, 1, context, n_bins) → (B, 1, context, n_bins); ``ValueError`` otherwise."""
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, config.context, config.n_bins):
        raise ValueError(f"piano network: expected input (B, {config.context}, {config.n_bins}) or "
                         f"(B, 1, {config.context}, {config.n_bins}), got {tuple(x.shape)}")
    return x


class PianoNet(nn.Module):
    """Base of both architectures: a ``config``, the fast ``forward``, :meth:`reference` and :meth:`predict`."""

    config: PianoNetConfig

    def reference(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The plain modules one by one: the same function as ``forward`` (to float rounding, with the same random
        numbers), slower; what the tests compare the fast path against (module docstring)."""
        raise NotImplementedError

    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Outputs in [0, 1]-style units: sigmoid probabilities for the binary tasks, the ReLU outputs otherwise."""
        return activations(self(x))


class HardSharingNet(PianoNet):
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
            blocks.append(conv_block(c_in, maps, kt, kf, config.stem_dropout, config.stem_noise, noise=config.noise))
            c_in = maps
        self.stem = nn.Sequential(*blocks)
        self.heads = nn.ModuleDict({t: TaskHead(config, t, c_in) for t in config.tasks})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = normalised_input(self.input_norm, as_input(x, self.config))
        z = x
        for i, block in enumerate(self.stem):
            conv, std, sigma, noise = block_parts(block)
            weight, bias = first_conv_params(self.input_norm, conv) if i == 0 else (conv.weight, conv.bias)
            z = elu_noise(conv2d(z, weight, bias), std, sigma, self.training, noise)
        return heads_forward(self.heads, z, self.training)

    def reference(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.stem(self.input_norm(as_input(x, self.config)))
        return {t: head(z) for t, head in self.heads.items()}


# ----------------------------------------------------------------------------------------------------- helpers


def activations(outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Network outputs → predictions: sigmoid for onsets/frames/offsets, the (already ReLU'd) regression as is."""
    return {t: torch.sigmoid(y) if t in BINARY else y for t, y in outputs.items()}


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (α of the cross-stitch units and BatchNorm's γ, β included)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
