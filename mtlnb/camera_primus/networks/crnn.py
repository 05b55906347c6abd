"""The baseline's convolutional-recurrent networks (CRNN) for CTC: DNN_OMR and DNN_A2S.

Both networks are the Keras models of the late-fusion baseline (Alfaro-Contreras et al. 2023; thesis §3,
"Baseline DNN_OMR" and "Baseline DNN_A2S"), rebuilt in PyTorch so that a trained model behaves like the original:

    (B, 1, H, W) ─► conv blocks ─► (B, C, H', W') ─► columns (B, T, H'·C) ─► BiLSTM ×2 ─► Linear ─► log-softmax

Every conv block is Conv2d (Keras "same" padding, no bias) → BatchNorm2d → LeakyReLU(0.2) → MaxPool2d.

Keras behaviour reproduced on purpose (the baseline is Keras; each point changes numbers if done the torch way):

- **"same" padding with even kernels** (10×2, 8×5): Keras pads ``k - 1`` in total with the extra row/column at the
  bottom/right (``top = (k - 1) // 2``).  Done with an explicit :func:`torch.nn.functional.pad` in
  :class:`KerasSamePad` so that the convention is visible and tested, not left to a framework default.
- **BatchNorm**: Keras defaults ``momentum=0.99`` (weight of the old running value, i.e. torch ``momentum=0.01``)
  and ``epsilon=1e-3`` (torch's default is 1e-5).  A model evaluated with torch's defaults would normalise with
  differently averaged statistics.
- **Column features**: Keras permutes (B, H, W, C) → (B, W, H, C) and flattens the last two axes, so feature
  ``h·C + c`` holds channel ``c`` of row ``h``; we flatten in the same order.
- **LSTM**: ``Bidirectional(LSTM(256, dropout=0.5, return_sequences=True))``.  Keras' ``dropout`` drops the
  layer's *inputs* (not its outputs, not the recurrent state), so each BiLSTM is preceded by ``Dropout(0.5)``.
  Keras' Bidirectional draws one mask per direction; we draw one mask shared by both directions so that both run
  in one fused (cuDNN) call -- the same rate, only the noise of the two directions is correlated.
  Keras has one bias per gate, torch two (``bias_ih`` + ``bias_hh``): we keep ``bias_hh`` at zero and frozen, so
  the sum equals Keras' bias, the trainable parameter count equals Keras', and the bias learns at Keras' rate.
- **Initialisation**: Keras defaults -- glorot-uniform kernels (conv, dense, LSTM input), orthogonal recurrent
  kernels, zero biases, LSTM forget-gate bias 1 (``unit_forget_bias=True``), BatchNorm γ=1, β=0.
- **Output**: Keras ends with ``Dense(|V|+1, softmax)`` and takes ``log(p + 1e-7)`` inside ``ctc_batch_cost``;
  we return ``log_softmax`` directly (the same up to that epsilon, and numerically safer).  The CTC blank is the
  last class, index ``|V|``.

Output layout: **batch first**, ``(B, T, |V|+1)``, like the inputs; :func:`mtlnb.camera_primus.networks.losses.ctc_loss`
transposes to the ``(T, B, C)`` that :func:`torch.nn.functional.ctc_loss` wants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Keras' BatchNormalization defaults, in torch's convention (torch momentum = 1 - Keras momentum).
KERAS_BN_MOMENTUM = 0.01
KERAS_BN_EPS = 1e-3


class ConvStackConfig:
    """What a config of conv blocks in front of CTC columns knows about them: checks and derived sizes.

    The one home of this arithmetic for :class:`CRNNConfig` and GradSPSA's config
    (:class:`mtlnb.camera_primus.networks.gradspsa_a2s.GradSPSAConfig`).  A mixin of frozen dataclasses that have
    the fields annotated here (documentation only: it adds no field).
    """

    vocab_size: int
    input_height: int
    filters: tuple[int, ...]
    kernels: tuple[tuple[int, int], ...]
    pools: tuple[tuple[int, int], ...]
    leaky_slope: float
    bn_momentum: float
    bn_eps: float

    def _check_conv_stack(self, min_blocks: int = 1, blocks_note: str = "") -> None:
        """``ValueError`` (naming the config class) for no symbol, fewer than ``min_blocks`` conv blocks, unequal
        filters/kernels/pools, or an input height the pools do not divide; ``blocks_note`` is added to the
        message about the blocks."""
        name = type(self).__name__
        if self.vocab_size < 1:
            raise ValueError(f"{name}.vocab_size must be >= 1, got {self.vocab_size}")
        n = len(self.filters)
        if n < min_blocks or len(self.kernels) != n or len(self.pools) != n:
            raise ValueError(
                f"{name}: filters, kernels and pools need one entry per conv block{blocks_note}, got "
                f"{len(self.filters)}, {len(self.kernels)}, {len(self.pools)}"
            )
        if self.input_height % self.height_reduction:
            raise ValueError(
                f"{name}.input_height {self.input_height} is not divisible by the pools' height reduction "
                f"{self.height_reduction}"
            )

    @property
    def height_reduction(self) -> int:
        """Product of the pools' height factors (OMR 16, A2S 4, GradSPSA's A2S 4)."""
        return math.prod(p[0] for p in self.pools)

    @property
    def time_reduction(self) -> int:
        """Product of the pools' width factors: input columns per output frame (baselines 2, GradSPSA's A2S 4)."""
        return math.prod(p[1] for p in self.pools)

    @property
    def features_per_column(self) -> int:
        """Features of one column after the last conv block, rows × channels (512 for all three networks)."""
        return self.filters[-1] * (self.input_height // self.height_reduction)

    @property
    def num_classes(self) -> int:
        """|V| + 1: the symbols and the CTC blank (last)."""
        return self.vocab_size + 1

    def output_lengths(self, widths):
        """CTC input lengths (frames) for input widths; see :func:`output_lengths`."""
        return output_lengths(widths, tuple(p[1] for p in self.pools))


@dataclass(frozen=True)
class CRNNConfig(ConvStackConfig):
    """Hyper-parameters of one CRNN; build the baseline's two with :func:`omr_config` and :func:`a2s_config`."""

    vocab_size: int  # |V| true symbols; the network outputs |V| + 1 classes, the last one the CTC blank
    input_height: int  # rows of the input: 64 image rows (OMR) or 256 resized CQT bins (A2S), as in the baseline
    filters: tuple[int, ...]  # output channels of each conv block (baseline: OMR 64,64,128,128; A2S 8,8)
    kernels: tuple[tuple[int, int], ...]  # (h, w) kernel of each conv block (OMR 5×5,5×5,3×3,3×3; A2S 10×2, 8×5)
    pools: tuple[tuple[int, int], ...]  # (h, w) max-pool size = stride of each block; the w factors set the CTC rate
    lstm_units: int = 256  # units per direction of each BiLSTM (baseline)
    lstm_layers: int = 2  # stacked BiLSTMs (baseline)
    lstm_dropout: float = 0.5  # Keras LSTM(dropout=0.5): dropout on each BiLSTM's inputs (baseline)
    leaky_slope: float = 0.2  # LeakyReLU(0.2) after every BatchNorm (baseline)
    bn_momentum: float = KERAS_BN_MOMENTUM  # Keras momentum 0.99 written the torch way, so running stats match
    bn_eps: float = KERAS_BN_EPS  # Keras' epsilon; torch's 1e-5 would normalise small-variance channels differently

    def __post_init__(self) -> None:
        self._check_conv_stack()


def omr_config(vocab_size: int) -> CRNNConfig:
    """The baseline DNN_OMR: input height 64, four conv blocks, output every 2 image columns."""
    return CRNNConfig(
        vocab_size=vocab_size,
        input_height=64,
        filters=(64, 64, 128, 128),
        kernels=((5, 5), (5, 5), (3, 3), (3, 3)),
        pools=((2, 2), (2, 1), (2, 1), (2, 1)),
    )


def a2s_config(vocab_size: int) -> CRNNConfig:
    """The baseline DNN_A2S: input height 256 (resized CQT), two conv blocks, output every 2 CQT columns."""
    return CRNNConfig(
        vocab_size=vocab_size,
        input_height=256,
        filters=(8, 8),
        kernels=((10, 2), (8, 5)),
        pools=((2, 2), (2, 1)),
    )


def output_lengths(widths, pool_widths: tuple[int, ...]):
    """Output frames of a conv stack for given input widths.

    Parameters
    ----------
    widths : int, sequence of int, np.ndarray or torch.Tensor
        Unpadded input widths (columns).
    pool_widths : tuple of int
        Width factor of each max-pool, in order.  Pooling floors (Keras/torch "valid" pooling), so the length is
        the width floor-divided by each factor in turn (equal to ``widths // prod(pool_widths)``).

    Returns
    -------
    Same kind as ``widths`` (a ``torch.int64`` tensor for tensors and sequences, an int for an int).

    Raises
    ------
    ValueError
        If a width gives no output frame (CTC needs at least one).
    """
    if isinstance(widths, (int, np.integer)):
        lengths = int(widths)
        for p in pool_widths:
            lengths //= p
        if lengths < 1:
            raise ValueError(f"input width {widths} gives no output frame (time reduction {math.prod(pool_widths)})")
        return lengths
    lengths = torch.as_tensor(widths, dtype=torch.int64)
    if lengths.ndim != 1:
        raise ValueError(f"widths must be an int or 1-D, got shape {tuple(lengths.shape)}")
    for p in pool_widths:
        lengths = torch.div(lengths, p, rounding_mode="floor")
    if lengths.numel() and int(lengths.min()) < 1:
        bad = torch.as_tensor(widths, dtype=torch.int64)[lengths < 1].tolist()
        raise ValueError(f"input widths {bad} give no output frame (time reduction {math.prod(pool_widths)})")
    return lengths


class KerasSamePad(nn.Module):
    """Zero padding that makes a stride-1 convolution keep its input size, exactly as Keras' ``padding="same"``.

    Keras pads ``k - 1`` in total along each axis, ``(k - 1) // 2`` before and the rest after: for an even kernel
    the extra row goes at the bottom and the extra column at the right (10 → 4 above, 5 below; 2 → 0 left, 1 right).
    """

    def __init__(self, kernel: tuple[int, int]):
        super().__init__()
        kh, kw = kernel
        top, left = (kh - 1) // 2, (kw - 1) // 2
        # F.pad orders the last axis first: (left, right, top, bottom).
        self.padding = (left, kw - 1 - left, top, kh - 1 - top)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.padding)

    def extra_repr(self) -> str:
        return f"padding(left, right, top, bottom)={self.padding}"


class ConvBlock(nn.Module):
    """Conv2d (Keras "same", no bias) → BatchNorm2d → LeakyReLU → MaxPool2d (pool size = stride).

    Shapes: ``(B, C_in, H, W)`` → ``(B, C_out, H // ph, W // pw)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int],
        pool: tuple[int, int],
        leaky_slope: float = 0.2,
        bn_momentum: float = KERAS_BN_MOMENTUM,
        bn_eps: float = KERAS_BN_EPS,
    ):
        super().__init__()
        self.pad = KerasSamePad(kernel)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)
        self.act = nn.LeakyReLU(leaky_slope)
        self.pool = nn.MaxPool2d(pool, stride=pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.bn(self.conv(self.pad(x)))))


class BiLSTM(nn.Module):
    """Keras ``Bidirectional(LSTM(units, dropout=p, return_sequences=True))``: dropout on the inputs, then a BiLSTM.

    Shapes: ``(B, T, F)`` → ``(B, T, 2·units)``, forward direction first (Keras ``merge_mode="concat"``).
    No sequence packing: like the baseline, the backward direction also reads the batch's padding.
    """

    def __init__(self, in_features: int, units: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.LSTM(in_features, units, batch_first=True, bidirectional=True)
        keras_init_(self.rnn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(self.dropout(x))[0]


def keras_init_(module: nn.Module) -> nn.Module:
    """Initialise ``module`` and its children with Keras' defaults, in place; returns ``module``.

    Conv/Linear weights glorot-uniform, biases zero; LSTM input weights glorot-uniform, recurrent weights orthogonal,
    ``bias_ih`` zero with forget-gate slice 1 (torch and Keras both order the gates i, f, g/c, o), ``bias_hh`` zero
    and frozen (see the module docstring); norm layers γ=1, β=0.  torch's (out, in, ...) weight layout gives the
    same fan-in/fan-out as Keras' (..., in, out), hence the same glorot limits.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LSTM):
            h = m.hidden_size
            for name, p in m.named_parameters():
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(p)
                elif name.startswith("weight_hh"):
                    nn.init.orthogonal_(p)
                elif name.startswith("bias_ih"):
                    with torch.no_grad():
                        p.zero_()
                        p[h : 2 * h] = 1.0
                elif name.startswith("bias_hh"):
                    nn.init.zeros_(p)
                    p.requires_grad_(False)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    return module


def keras_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters Keras would have: all of ``module``'s except the LSTMs' fixed-zero ``bias_hh``.

    Use it to count parameters and to take a layer's parameters for the sharing loss.  It does not look at
    ``requires_grad``, so it also works for a frozen model (GradSPSA's OMR).
    """
    lstms = (m for m in module.modules() if isinstance(m, nn.LSTM))
    fixed = {id(p) for m in lstms for name, p in m.named_parameters() if name.startswith("bias_hh")}
    return [p for p in module.parameters() if id(p) not in fixed]


def parameter_count(module: nn.Module) -> int:
    """Number of Keras-trainable parameters (BatchNorm running statistics are buffers and not counted)."""
    return sum(p.numel() for p in keras_parameters(module))


def columns(x: torch.Tensor) -> torch.Tensor:
    """Conv feature map → columns in Keras' order: ``(B, C, H, W)`` → ``(B, W, H·C)``, feature ``h·C + c``."""
    b, c, h, w = x.shape
    return x.permute(0, 3, 2, 1).reshape(b, w, h * c)


def conv_stack(
    in_channels: int,
    filters: tuple[int, ...],
    kernels: tuple[tuple[int, int], ...],
    pools: tuple[tuple[int, int], ...],
    leaky_slope: float,
    bn_momentum: float,
    bn_eps: float,
) -> list[ConvBlock]:
    """One :class:`ConvBlock` per entry, channels chained from ``in_channels``."""
    blocks, c_in = [], in_channels
    for c_out, kernel, pool in zip(filters, kernels, pools):
        blocks.append(ConvBlock(c_in, c_out, kernel, pool, leaky_slope, bn_momentum, bn_eps))
        c_in = c_out
    return blocks


def check_input(x: torch.Tensor, height: int, where: str) -> None:
    """``ValueError`` unless ``x`` is a float ``(B, 1, height, W)`` batch."""
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != height:
        raise ValueError(f"{where}: expected input of shape (B, 1, {height}, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{where}: expected a floating-point input, got {x.dtype}")


class ConvStackNet(nn.Module):
    """Base of the CTC networks whose conv blocks ``conv1`` … ``convN`` sit directly on the network.

    Registers the blocks under those names (they are the state-dict prefixes of checkpoints and the sub-module
    names GradSPSA's sharing loss pairs) and runs them in order.  Initialisation is left to the subclass, whose
    order of draws fixes the initial weights.
    """

    conv_names: tuple[str, ...]

    def _add_conv_blocks(self, config: ConvStackConfig) -> list[ConvBlock]:
        """Create and register ``config``'s conv blocks (single input channel); returns them, not initialised."""
        cfg = config
        blocks = conv_stack(1, cfg.filters, cfg.kernels, cfg.pools, cfg.leaky_slope, cfg.bn_momentum, cfg.bn_eps)
        self.conv_names = tuple(f"conv{i + 1}" for i in range(len(blocks)))
        for name, block in zip(self.conv_names, blocks):
            self.add_module(name, block)
        return blocks

    def _run_conv_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` through every conv block → ``(B, filters[-1], H // height_reduction,
        W // time_reduction)``."""
        for name in self.conv_names:
            x = getattr(self, name)(x)
        return x


class CRNN(ConvStackNet):
    """The baseline CRNN (DNN_OMR or DNN_A2S, chosen by the config).

    Sub-modules are named for GradSPSA's sharing loss: conv blocks ``conv1``… ``convN``, BiLSTMs ``lstm1``…,
    output layer ``out``.

    Shape trace, OMR (``omr_config``), input ``(B, 1, 64, W)``::

        conv1 5×5, 64, pool (2,2)   (B, 64, 32, W//2)
        conv2 5×5, 64, pool (2,1)   (B, 64, 16, W//2)
        conv3 3×3, 128, pool (2,1)  (B, 128, 8, W//2)
        conv4 3×3, 128, pool (2,1)  (B, 128, 4, W//2)      ← conv_features(x), GradSPSA's OMR input
        columns                     (B, W//2, 512)
        lstm1, lstm2                (B, W//2, 512)
        out + log_softmax           (B, W//2, |V|+1)

    A2S (``a2s_config``), input ``(B, 1, 256, W)``::

        conv1 10×2, 8, pool (2,2)   (B, 8, 128, W//2)
        conv2 8×5, 8, pool (2,1)    (B, 8, 64, W//2)
        columns                     (B, W//2, 512)
        lstm1, lstm2, out           (B, W//2, |V|+1)
    """

    def __init__(self, config: CRNNConfig):
        super().__init__()
        self.config = config
        cfg = config
        blocks = self._add_conv_blocks(cfg)
        self.lstm_names = tuple(f"lstm{i + 1}" for i in range(cfg.lstm_layers))
        n_in = cfg.features_per_column
        for name in self.lstm_names:
            self.add_module(name, BiLSTM(n_in, cfg.lstm_units, cfg.lstm_dropout))
            n_in = 2 * cfg.lstm_units
        self.out = nn.Linear(n_in, cfg.num_classes)
        for block in blocks:  # the BiLSTMs initialise themselves
            keras_init_(block)
        keras_init_(self.out)

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last conv block (after its pooling).

        Parameters
        ----------
        x : torch.Tensor, float, shape (B, 1, input_height, W)

        Returns
        -------
        torch.Tensor, shape (B, filters[-1], input_height // height_reduction, W // time_reduction)
            For OMR: ``(B, 128, 4, W // 2)``, the fourth conv block that GradSPSA attends to.
        """
        check_input(x, self.config.input_height, type(self).__name__)
        return self._run_conv_blocks(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Frame-wise CTC log-posteriors.

        Parameters
        ----------
        x : torch.Tensor, float, shape (B, 1, input_height, W)
            Padded batch of images (OMR) or CQTs (A2S), values in [0, 1].

        Returns
        -------
        torch.Tensor, shape (B, T, vocab_size + 1), T = W // time_reduction
            Natural-log softmax over the symbols and the blank (last index).  Frames beyond a sample's
            :meth:`output_lengths` are padding.
        """
        h = columns(self.conv_features(x))
        for name in self.lstm_names:
            h = getattr(self, name)(h)
        return F.log_softmax(self.out(h), dim=-1)

    def output_lengths(self, widths):
        """CTC input lengths for unpadded input widths: ``widths // 2`` for both baselines."""
        return self.config.output_lengths(widths)
