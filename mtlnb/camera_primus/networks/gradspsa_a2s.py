"""GradSPSA's DNN_A2S: the A2S CRNN with a third conv block, an OMR-attending interaction block and dense connections.

Thesis §3, "GradSPSA's DNN_A2S" (built on the late-fusion baseline of Alfaro-Contreras et al. 2023).  The OMR
network is the baseline :class:`~mtlnb.camera_primus.networks.crnn.CRNN`, trained first and **never updated** by the
A2S loss (unidirectional sharing): :class:`GradSPSAA2S` keeps a frozen copy, always in eval mode (its BatchNorm
statistics stay put), runs it under ``torch.no_grad()`` and reads its fourth conv block.

Shape trace, A2S CQT ``(B, 1, 256, W)`` and OMR image ``(B, 1, 64, W_img)``, defaults (d = 128, |V| symbols)::

    A2S  conv1 10×2, 8, pool (2,2)    (B, 8, 128, W//2)
         conv2 8×5, 8, pool (2,1)     (B, 8, 64, W//2)
         conv3 3×3, 8, pool (1,2)     (B, 8, 64, W//4)        T = W // 4 CTC frames
         columns                      (B, T, 512)  = c3
         a2s_proj (Linear)            (B, T, d)    = queries
    OMR  frozen conv1..conv4          (B, 128, 4, W_img//2)
         columns                      (B, T_o, 512)
         omr_proj (Linear)            (B, T_o, d)  = keys and values
    interaction(queries, keys/values) (B, T, d)    = z
    dense connection 1: [c3, z]       (B, T, 512 + d)
    lstm (BiLSTM 256, dropout 0.5)    (B, T, 512) = l
    dense connection 2: [c3, z, l]    (B, T, 1024 + d)
    out (Linear) + log_softmax        (B, T, |V| + 1)

Choices where the thesis is silent or ambiguous (each made here, on purpose):

- **conv3's pool (1, 2)** is read in Keras' (h, w) order, so it halves the *width* (time): the thesis adds the
  block "to downsample the features to make the memory usage of the MHA … more manageable", and attention memory
  grows with the number of frames, not with the rows.  So the A2S CTC rate is one frame per 4 CQT columns
  (``output_lengths = W // 4``; 850 → 212).  ``pools`` in the config switches it back to (2, 1) if wanted.
- **Queries are A2S, keys/values OMR**: the block's output must keep the A2S time axis (CTC aligns it with the
  A2S input), and an attention output has the queries' length.  The thesis's interaction block (Yang et al. 2022)
  enriches the weaker modality with the other's, which is the same reading.
- **"2 heads, 64 query and key dimension"** is read as Keras ``MultiHeadAttention(num_heads=2, key_dim=64)``,
  i.e. 64 per head, so both Linear layers project to ``d = 2·64 = 128`` (``nn.MultiheadAttention(128, 2)``).
- **Feed-forward**: Linear(d, 4d) → ReLU → Linear(4d, d) (Vaswani et al.'s ratio and activation); post-norm
  Add & Norm (the thesis's order: attention, Add & Norm, feed-forward, Add & Norm), LayerNorm eps 1e-5.
- **Dropout 0.1** on the attention weights (the thesis gives it to the MHA layer) and, as in the standard
  Transformer layer, on each sub-layer's output before its residual addition (``residual_dropout``; 0 turns it off).
- **Dense connections** start at conv3's column features ("starting from the third convolutional block") and
  concatenate, DenseNet-style, everything after it: the BiLSTM reads ``[c3, z]`` and the output layer
  ``[c3, z, l]``.  ``dense_connections=False`` gives the plain chain (BiLSTM reads z, output reads l), for an
  ablation the thesis did not run.
- **OMR padding** is masked out of the attention when the OMR widths are given (padded image columns are not
  score); the baseline has no masking anywhere else, and neither do we.
- **Ablation switches** (:data:`ADDITIONS`, :func:`ablate`; the thesis ran no ablation): each of GradSPSA's four
  additions to the baseline A2S can be removed alone.  ``dense_connections=False``: the plain chain above.
  ``interaction_block=False``: no attention to the OMR (nor the two projections in front of it); the BiLSTM reads
  the conv columns ``c3`` directly (with dense connections the output layer reads ``[c3, l]``), and the OMR copy
  is kept for the sharing loss only, which then has two pairs, conv and BiLSTM, with the thesis's factors of s = 1
  and s = 3 (the missing layer is not replaced, and the others are not re-weighted).  Without the **third conv
  block** the stack is the baseline's two blocks (one CTC frame per 2 input columns instead of 4) and the dense
  connections start at conv2's columns.  Without the **sharing loss**: γ = 0.
- Initialisation: Keras defaults everywhere (:func:`~mtlnb.camera_primus.networks.crnn.keras_init_`), the q/k/v
  projections initialised as three separate glorot matrices, as Keras' separate query/key/value layers are.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from mtlnb.camera_primus.networks import losses
from mtlnb.camera_primus.networks.crnn import (
    KERAS_BN_EPS,
    KERAS_BN_MOMENTUM,
    CRNN,
    BiLSTM,
    ConvStackConfig,
    ConvStackNet,
    check_input,
    columns,
    keras_init_,
    keras_parameters,
)

# The thesis's sharing pairs, shallow to deep (s = 1..S): OMR Conv3, BiLSTM1, BiLSTM2 ↔ A2S Conv2, interaction
# block, BiLSTM.  Names are sub-module names of the OMR CRNN and of GradSPSAA2S.
SHARING_PAIRS = (("conv3", "conv2"), ("lstm1", "interaction"), ("lstm2", "lstm"))
# GradSPSA's four additions to the baseline A2S, each removable alone by ablate() (module docstring).
ADDITIONS = ("dense_connections", "interaction_block", "third_conv_block", "sharing_loss")


@dataclass(frozen=True)
class GradSPSAConfig(ConvStackConfig):
    """Hyper-parameters of GradSPSA's DNN_A2S (thesis §3); defaults are the thesis's where it gives them."""

    vocab_size: int  # |V| true symbols; output |V| + 1 classes, blank last (the baseline's convention)
    input_height: int = 256  # resized CQT bins, as the baseline A2S
    filters: tuple[int, ...] = (8, 8, 8)  # baseline A2S conv1, conv2 + the thesis's third block (8 filters)
    kernels: tuple[tuple[int, int], ...] = ((10, 2), (8, 5), (3, 3))  # baseline + thesis ("kernel size 3")
    pools: tuple[tuple[int, int], ...] = ((2, 2), (2, 1), (1, 2))  # conv3's (1, 2) halves time (module docstring)
    d_model: int = 128  # width of both Linear projections = 2 heads × 64 (thesis: "64 query and key dimension")
    num_heads: int = 2  # thesis
    ff_dim: int = 512  # feed-forward hidden width, 4·d_model as in Vaswani et al. (thesis silent)
    attention_dropout: float = 0.1  # thesis: the MHA layer's dropout, on the attention weights
    residual_dropout: float = 0.1  # standard Transformer dropout before each Add & Norm (thesis silent)
    layer_norm_eps: float = 1e-5  # torch's default (thesis silent)
    dense_connections: bool = True  # thesis; False = plain chain, for an ablation
    interaction_block: bool = True  # thesis; False = no attention to the OMR features, for an ablation
    mask_omr_padding: bool = True  # ignore padded OMR columns as keys when their widths are given
    lstm_units: int = 256  # thesis: one BiLSTM with 256 units
    lstm_dropout: float = 0.5  # thesis: 0.5 dropout, Keras-style on the BiLSTM's inputs
    leaky_slope: float = 0.2  # as the baseline's conv blocks
    bn_momentum: float = KERAS_BN_MOMENTUM  # Keras momentum 0.99 (torch convention), as the baseline
    bn_eps: float = KERAS_BN_EPS  # Keras epsilon, as the baseline
    sharing_gamma: float = 1e-7  # γ of the sharing loss (thesis, after Mrini et al. 2021)
    sharing_rule: str = "resize"  # how paired layers of different shapes are compared (losses.SHARING_RULES)

    def __post_init__(self) -> None:
        self._check_conv_stack(min_blocks=2, blocks_note=" (at least conv1, conv2)")
        if self.d_model % self.num_heads:
            raise ValueError(f"GradSPSAConfig.d_model {self.d_model} is not divisible by num_heads {self.num_heads}")
        if self.sharing_rule not in losses.SHARING_RULES:
            raise ValueError(
                f"GradSPSAConfig.sharing_rule must be one of {losses.SHARING_RULES}, got {self.sharing_rule!r}"
            )
        if not self.sharing_gamma >= 0:
            raise ValueError(f"GradSPSAConfig.sharing_gamma must be >= 0, got {self.sharing_gamma}")


def ablate(config: GradSPSAConfig, addition: str | None) -> GradSPSAConfig:
    """``config`` with one of GradSPSA's :data:`ADDITIONS` removed (``None``: unchanged); module docstring.

    ``"third_conv_block"`` keeps the first two conv blocks (the baseline A2S's), so it needs a config with three
    or more; ``"sharing_loss"`` sets γ = 0; the two others switch their flag off.  ``ValueError`` for an unknown
    name, or an addition the config has already lost.
    """
    if addition is None:
        return config
    if addition not in ADDITIONS:
        raise ValueError(f"ablate: addition must be one of {ADDITIONS} or None, got {addition!r}")
    if addition == "third_conv_block":
        if len(config.filters) < 3:
            raise ValueError(f"ablate: the config has {len(config.filters)} conv blocks, no third one to remove")
        return replace(config, filters=config.filters[:2], kernels=config.kernels[:2], pools=config.pools[:2])
    if addition == "sharing_loss":
        return replace(config, sharing_gamma=0.0)
    if not getattr(config, addition):
        raise ValueError(f"ablate: the config has no {addition} to remove")
    return replace(config, **{addition: False})


class InteractionBlock(nn.Module):
    """Post-norm Transformer layer with cross-attention: MHA → Add & Norm → feed-forward → Add & Norm.

    Shapes: queries ``(B, T, d)``, memory (keys = values) ``(B, S, d)`` → ``(B, T, d)``.  No positional encoding
    (the thesis: the conv and recurrent layers carry position).
    """

    def __init__(
        self, d_model: int, num_heads: int, ff_dim: int, attention_dropout: float, residual_dropout: float, eps: float
    ):
        super().__init__()
        self.attention = nn.MultiheadAttention(d_model, num_heads, dropout=attention_dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.feed_forward = nn.Sequential(nn.Linear(d_model, ff_dim), nn.ReLU(), nn.Linear(ff_dim, d_model))
        self.norm2 = nn.LayerNorm(d_model, eps=eps)
        self.dropout = nn.Dropout(residual_dropout)
        keras_init_(self)
        # Keras has separate query/key/value kernels, each glorot over (d, d); torch stacks them into one (3d, d).
        with torch.no_grad():
            for w in self.attention.in_proj_weight.chunk(3, dim=0):
                nn.init.xavier_uniform_(w)

    def forward(
        self, queries: torch.Tensor, memory: torch.Tensor, memory_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``memory_padding_mask``: bool ``(B, S)``, True where a memory column is padding (ignored)."""
        attended = self.attention(queries, memory, memory, key_padding_mask=memory_padding_mask, need_weights=False)[0]
        h = self.norm1(queries + self.dropout(attended))
        return self.norm2(h + self.dropout(self.feed_forward(h)))


class GradSPSAA2S(ConvStackNet):
    """GradSPSA's DNN_A2S with its frozen OMR feature extractor; shape trace in the module docstring.

    Parameters
    ----------
    config : GradSPSAConfig
    omr : CRNN
        The trained OMR network.  A deep copy is kept, frozen (``requires_grad=False``) and in eval mode, so the
        caller's model is untouched and nothing in this module can change the OMR weights or BatchNorm statistics.
        Its weights are part of this module's ``state_dict`` (a checkpoint is self-contained); to load one, build
        the module with any OMR of the same shape and call ``load_state_dict``.

    Sub-modules: ``conv1``, ``conv2``, ``conv3``, ``a2s_proj``, ``omr_proj``, ``interaction``, ``lstm``, ``out``
    and the frozen ``omr`` (an ablated config lacks ``conv3``, or the projections and ``interaction``).  Optimise
    only ``trainable_parameters()`` (equivalently, the parameters with ``requires_grad``).
    """

    def __init__(self, config: GradSPSAConfig, omr: CRNN):
        super().__init__()
        if not isinstance(omr, CRNN):
            raise ValueError(f"GradSPSAA2S: omr must be a crnn.CRNN, got {type(omr).__name__}")
        self.config = config
        cfg = config
        blocks = self._add_conv_blocks(cfg)
        c3 = cfg.features_per_column
        if cfg.interaction_block:
            self.a2s_proj = nn.Linear(c3, cfg.d_model)
            self.omr_proj = nn.Linear(omr.config.features_per_column, cfg.d_model)
            self.interaction = InteractionBlock(
                cfg.d_model, cfg.num_heads, cfg.ff_dim, cfg.attention_dropout, cfg.residual_dropout,
                cfg.layer_norm_eps
            )
            z_width = cfg.d_model
        else:  # the ablation: the BiLSTM reads the conv columns (module docstring)
            z_width = 0
        if cfg.dense_connections:
            lstm_in = c3 + z_width
        else:
            lstm_in = z_width or c3
        self.lstm = BiLSTM(lstm_in, cfg.lstm_units, cfg.lstm_dropout)
        out_in = lstm_in + 2 * cfg.lstm_units if cfg.dense_connections else 2 * cfg.lstm_units
        self.out = nn.Linear(out_in, cfg.num_classes)
        if cfg.interaction_block:
            keras_init_(self.a2s_proj)
            keras_init_(self.omr_proj)
        keras_init_(self.out)
        for block in blocks:
            keras_init_(block)

        self.omr = copy.deepcopy(omr)
        self.omr.zero_grad(set_to_none=True)  # no stale gradients copied along
        self.omr.requires_grad_(False)
        self.omr.eval()

    def train(self, mode: bool = True) -> "GradSPSAA2S":
        """Set train/eval mode for the A2S layers; the OMR network stays in eval mode whatever ``mode`` is."""
        super().train(mode)
        self.omr.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The A2S parameters an optimiser should update (the OMR copy and the LSTM's fixed biases excluded)."""
        return [p for p in self.parameters() if p.requires_grad]

    def omr_features(self, omr_input: torch.Tensor) -> torch.Tensor:
        """The frozen OMR's last conv block as columns, no autograd: ``(B, 1, 64, W_img)`` → ``(B, W_img//2, 512)``."""
        with torch.no_grad():
            return columns(self.omr.conv_features(omr_input))

    def forward(
        self, a2s_input: torch.Tensor, omr_input: torch.Tensor, omr_widths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Frame-wise CTC log-posteriors for A2S.

        Parameters
        ----------
        a2s_input : torch.Tensor, float, shape (B, 1, 256, W)
            Padded CQT batch.
        omr_input : torch.Tensor, float, shape (B, 1, 64, W_img)
            The paired score images (same order), padded.
        omr_widths : torch.Tensor of int, shape (B,), optional
            Unpadded image widths; when given (and ``mask_omr_padding``), padded OMR columns are not attended to.

        Returns
        -------
        torch.Tensor, shape (B, W // 4, vocab_size + 1)
            Natural-log softmax, blank last; frames beyond :meth:`output_lengths` are padding.
        """
        cfg = self.config
        check_input(a2s_input, cfg.input_height, type(self).__name__)
        if omr_input.shape[0] != a2s_input.shape[0]:
            raise ValueError(
                f"GradSPSAA2S: {a2s_input.shape[0]} A2S inputs but {omr_input.shape[0]} OMR inputs; they come in pairs"
            )
        c3 = columns(self._run_conv_blocks(a2s_input))
        if cfg.interaction_block:
            memory = self.omr_proj(self.omr_features(omr_input))
            mask = None
            if omr_widths is not None and cfg.mask_omr_padding:
                lengths = self.omr.output_lengths(torch.as_tensor(omr_widths).cpu()).to(memory.device)
                if lengths.shape != (memory.shape[0],):
                    raise ValueError(
                        f"GradSPSAA2S: omr_widths must have shape ({memory.shape[0]},), got {tuple(lengths.shape)}"
                    )
                mask = torch.arange(memory.shape[1], device=memory.device)[None, :] >= lengths[:, None]
            z = self.interaction(self.a2s_proj(c3), memory, mask)
            h = torch.cat([c3, z], dim=-1) if cfg.dense_connections else z
        else:  # the ablation without the interaction block: the OMR image is not read
            h = c3
        if cfg.dense_connections:
            h = torch.cat([h, self.lstm(h)], dim=-1)
        else:
            h = self.lstm(h)
        return F.log_softmax(self.out(h), dim=-1)

    def output_lengths(self, widths):
        """CTC input lengths for unpadded CQT widths (``W // 4`` with the defaults)."""
        return self.config.output_lengths(widths)

    def sharing_pairs(self) -> tuple[tuple[str, str], ...]:
        """The ``SHARING_PAIRS`` whose A2S layer this network has (all three, or two without the interaction
        block)."""
        return tuple((o, a) for o, a in SHARING_PAIRS if hasattr(self, a))

    def sharing_layers(self) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
        """The paired layers' parameters for the sharing loss, shallow to deep (see :meth:`sharing_pairs`).

        Returns ``(omr_layers, a2s_layers)``: per layer, its Keras parameters in registration order.
        """
        pairs = self.sharing_pairs()
        omr_layers = [keras_parameters(getattr(self.omr, o)) for o, _ in pairs]
        a2s_layers = [keras_parameters(getattr(self, a)) for _, a in pairs]
        return omr_layers, a2s_layers

    def sharing_weights(self) -> tuple[float, ...]:
        """Eq. 4's factors of :meth:`sharing_pairs`: the thesis's S = 3 factors of the pairs present."""
        full = dict(zip(SHARING_PAIRS, losses.sharing_weights(len(SHARING_PAIRS))))
        return tuple(full[pair] for pair in self.sharing_pairs())

    def sharing_loss(self) -> torch.Tensor:
        """Thesis Eq. 4 over :meth:`sharing_pairs` with the config's γ and rule; gradients reach only A2S
        parameters."""
        return losses.gradual_soft_sharing_loss(
            *self.sharing_layers(), gamma=self.config.sharing_gamma, rule=self.config.sharing_rule,
            weights=self.sharing_weights()
        )
