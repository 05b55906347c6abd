"""Training losses: CTC (both studies' transcription networks) and GradSPSA's gradual soft parameter sharing.

- :func:`ctc_loss`: the baseline's CTC (Keras ``ctc_batch_cost`` averaged over the batch), blank = last class.
- :func:`gradual_soft_sharing_loss`: thesis Eq. 4, added to the A2S CTC loss (Eq. 5),

      L_GS = γ · Σ_{s=1..S} (e − e^((S−s)/S)) · ‖θ_s^OMR − θ_s^A2S‖²

  with :func:`sharing_weights` giving the factors.  The OMR side is a constant (unidirectional sharing): its
  tensors are detached, so gradients reach only A2S parameters.

How paired layers of different shapes are compared
---------------------------------------------------
The thesis pairs OMR {Conv3, BiLSTM1, BiLSTM2} with A2S {Conv2, interaction block, BiLSTM}, whose parameters
differ in shape (e.g. a 128×64×3×3 against an 8×8×8×5 kernel; a BiLSTM against a Transformer layer), and does
not say how ``θ^OMR − θ^A2S`` is then formed.  Two steps, both documented choices:

1. **Matching tensors by role.**  When the two layers have the same structure -- the same number of parameter
   tensors with the same ranks, in the same registration order (conv ↔ conv: kernel, BN γ, BN β; BiLSTM ↔ BiLSTM:
   per direction W_ih, W_hh, b) -- tensors are compared pairwise.  Otherwise (BiLSTM ↔ interaction block) there are
   no common roles, and each layer is flattened into one vector (its tensors concatenated in registration order).
2. **Comparing two tensors of different shapes** (``rule``):

   - ``"resize"`` (default): the OMR tensor is resampled to the A2S tensor's shape by separable linear
     interpolation along each axis (end points aligned), then ``‖resized − θ^A2S‖²``.  It reduces to Eq. 4's
     Frobenius norm when the shapes agree, penalises *every* A2S parameter, and relates like positions (first
     output channel with first output channel, kernel centre with kernel centre) rather than whatever happens to
     come first in memory.  Interpolation samples (it does not average) when shrinking, so the OMR values keep
     their spread instead of being pulled towards zero.
   - ``"truncate"``: both tensors flattened, the overlapping leading ``min(n_OMR, n_A2S)`` entries compared.  Also
     exact Eq. 4 for equal shapes; the simplest rule, but A2S entries past the overlap are not penalised.
   - ``"moments"``: ``n_A2S · ((μ_OMR − μ_A2S)² + (σ_OMR − σ_A2S)²)``: the squared 2-Wasserstein distance
     between Gaussians fitted to each tensor's values, scaled by the element count to the size of a Frobenius norm.
     Position-free (it only asks that the two layers' weights look alike); not Eq. 4 even for equal shapes.

With the thesis's γ = 1e-7 the term is tiny next to the CTC loss, so the choice changes training little; it is
switchable (``GradSPSAConfig.sharing_rule``) for those who want to find out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

SHARING_RULES = ("resize", "truncate", "moments")
CTC_REDUCTIONS = ("mean", "sum", "none")


def ctc_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths,
    target_lengths,
    blank: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """CTC negative log-likelihood as the baseline computes it.

    Parameters
    ----------
    log_probs : torch.Tensor, shape (B, T, C)
        Batch-first natural-log posteriors (the networks' output), C = |V| + 1.
    targets : torch.Tensor of int
        Padded ``(B, S)`` (only the first ``target_lengths[b]`` entries of row b are read) or all targets
        concatenated, 1-D.  Values in ``[0, C)`` except ``blank``.
    input_lengths, target_lengths : sequence or tensor of int, shape (B,)
        Valid frames per sample (``model.output_lengths(widths)``) and symbols per sample.
    blank : int, optional
        Blank index; default ``C - 1`` (the baseline's convention: the last class, index |V|).
    reduction : {"mean", "sum", "none"}
        ``"mean"``: mean over the batch of the per-sample losses, what Keras does with ``ctc_batch_cost`` (note:
        *not* torch's ``"mean"``, which also divides each loss by its target length); ``"none"``: shape (B,).

    Returns
    -------
    torch.Tensor
        Scalar (``"mean"``, ``"sum"``) or ``(B,)``, in nats.

    Raises
    ------
    ValueError
        For bad shapes, lengths or labels, and when a sample's loss is infinite (its target cannot be aligned
        within its frames: CTC needs ``T >= L + repeated neighbours``).  Infinite losses are not zeroed
        (``zero_infinity=False``): such samples must be removed before training, not hidden.
    """
    if log_probs.ndim != 3:
        raise ValueError(f"ctc_loss: log_probs must be (B, T, C), got shape {tuple(log_probs.shape)}")
    b, t, c = log_probs.shape
    blank = c - 1 if blank is None else int(blank)
    if not 0 <= blank < c:
        raise ValueError(f"ctc_loss: blank {blank} is outside the {c} classes")
    if reduction not in CTC_REDUCTIONS:
        raise ValueError(f"ctc_loss: reduction must be one of {CTC_REDUCTIONS}, got {reduction!r}")
    input_lengths = torch.as_tensor(input_lengths, dtype=torch.int64).cpu()
    target_lengths = torch.as_tensor(target_lengths, dtype=torch.int64).cpu()
    for name, lengths in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if lengths.shape != (b,):
            raise ValueError(f"ctc_loss: {name} must have shape ({b},), got {tuple(lengths.shape)}")
    if int(input_lengths.min()) < 1 or int(input_lengths.max()) > t:
        raise ValueError(
            f"ctc_loss: input_lengths must lie in [1, {t}] (the frames of log_probs), got {input_lengths.tolist()}"
        )
    if int(target_lengths.min()) < 1:
        raise ValueError(f"ctc_loss: every target needs at least one symbol, got {target_lengths.tolist()}")
    if targets.is_floating_point():
        raise ValueError(f"ctc_loss: targets must be integer labels, got {targets.dtype}")
    if targets.ndim == 2:
        if targets.shape[0] != b or int(target_lengths.max()) > targets.shape[1]:
            raise ValueError(
                f"ctc_loss: padded targets {tuple(targets.shape)} do not hold {b} rows of lengths "
                f"{target_lengths.tolist()}"
            )
        valid = torch.arange(targets.shape[1])[None, :] < target_lengths[:, None]
        labels = targets.cpu()[valid]
    elif targets.ndim == 1:
        if targets.shape[0] != int(target_lengths.sum()):
            raise ValueError(
                f"ctc_loss: {targets.shape[0]} concatenated targets, target_lengths sum to {int(target_lengths.sum())}"
            )
        labels = targets.cpu()
    else:
        raise ValueError(f"ctc_loss: targets must be (B, S) or 1-D, got shape {tuple(targets.shape)}")
    if int(labels.min()) < 0 or int(labels.max()) >= c or bool((labels == blank).any()):
        raise ValueError(f"ctc_loss: labels must lie in [0, {c}) and differ from the blank {blank}")

    # torch wants (T, B, C); CTC in float32 even under mixed precision (its recursions underflow in half).
    per_sample = F.ctc_loss(
        log_probs.transpose(0, 1).float(),
        targets,
        input_lengths,
        target_lengths,
        blank=blank,
        reduction="none",
        zero_infinity=False,
    )
    finite = torch.isfinite(per_sample)
    # On a GPU, reading ``finite`` would wait for the device every step; there the training loop's periodic
    # loss check (mtlnb.core.training, ``check_every``) stops a run with an infinite loss instead.
    if per_sample.device.type == "cpu" and not bool(finite.all()):
        bad = (~finite).nonzero().flatten().tolist()
        raise ValueError(
            f"ctc_loss: infinite loss for batch items {bad} (input_lengths {input_lengths[bad].tolist()}, "
            f"target_lengths {target_lengths[bad].tolist()}): a target cannot be aligned within its frames"
        )
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def sharing_weights(num_layers: int) -> tuple[float, ...]:
    """Eq. 4's per-layer factors ``e − e^((S−s)/S)`` for s = 1..S, shallow to deep (they grow with depth).

    S = 3: ``(e − e^(2/3), e − e^(1/3), e − 1) ≈ (0.7705, 1.3227, 1.7183)``.
    """
    if num_layers < 1:
        raise ValueError(f"sharing_weights: the number of shared layers must be >= 1, got {num_layers}")
    s_max = num_layers
    return tuple(math.e - math.exp((s_max - s) / s_max) for s in range(1, s_max + 1))


def _layer_tensors(layer, where: str) -> list[torch.Tensor]:
    tensors = list(layer.parameters()) if isinstance(layer, nn.Module) else list(layer)
    if not tensors:
        raise ValueError(f"gradual_soft_sharing_loss: {where} has no parameters")
    for x in tensors:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"gradual_soft_sharing_loss: {where} holds a {type(x).__name__}, not a tensor")
    return tensors


def _match(omr: list[torch.Tensor], a2s: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Pairs of (OMR, A2S) tensors to compare: by role where the structures agree, else the flattened layers."""
    if len(omr) == len(a2s) and all(o.ndim == a.ndim for o, a in zip(omr, a2s)):
        return list(zip(omr, a2s))
    return [(torch.cat([o.flatten() for o in omr]), torch.cat([a.flatten() for a in a2s]))]


def resize(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Resample ``x`` to ``shape`` by separable linear interpolation, end points aligned (``align_corners``).

    One axis at a time; an axis that already has the target length is left as is, a target length of 1 takes the
    first entry.  ``x`` and ``shape`` must have the same rank.
    """
    if x.ndim != len(shape):
        raise ValueError(f"resize: cannot resample a rank-{x.ndim} tensor to shape {tuple(shape)}")
    if x.ndim == 0:
        return x
    for dim, n in enumerate(shape):
        if x.shape[dim] == n:
            continue
        moved = x.movedim(dim, -1)
        lead = moved.shape[:-1]
        flat = moved.reshape(1, -1, moved.shape[-1])
        x = F.interpolate(flat, size=n, mode="linear", align_corners=True).reshape(*lead, n).movedim(-1, dim)
    return x


def _distance(omr: torch.Tensor, a2s: torch.Tensor, rule: str) -> torch.Tensor:
    """Squared distance between a constant OMR tensor and an A2S tensor under ``rule`` (module docstring)."""
    omr = omr.detach().to(device=a2s.device, dtype=a2s.dtype)
    if rule == "resize":
        return (resize(omr, a2s.shape) - a2s).pow(2).sum()
    if rule == "truncate":
        o, a = omr.flatten(), a2s.flatten()
        n = min(o.numel(), a.numel())
        return (o[:n] - a[:n]).pow(2).sum()
    # "moments"; the epsilon keeps the gradient of the standard deviation finite for constant tensors
    # (BatchNorm/LayerNorm γ start at all ones).
    o, a = omr.flatten(), a2s.flatten()
    sd_o = (o.var(unbiased=False) + 1e-12).sqrt()
    sd_a = (a.var(unbiased=False) + 1e-12).sqrt()
    return a.numel() * ((o.mean() - a.mean()).pow(2) + (sd_o - sd_a).pow(2))


def gradual_soft_sharing_loss(
    omr_layers: Sequence[nn.Module | Iterable[torch.Tensor]],
    a2s_layers: Sequence[nn.Module | Iterable[torch.Tensor]],
    gamma: float = 1e-7,
    rule: str = "resize",
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """Unidirectional gradual soft parameter sharing, thesis Eq. 4.

    Parameters
    ----------
    omr_layers, a2s_layers : sequence of nn.Module or of iterables of tensors, length S
        The paired layers, shallow to deep (s = 1..S).  A module stands for all its parameters; pass tensor lists
        to choose (``GradSPSAA2S.sharing_layers()`` passes Keras' parameters, without the LSTMs' fixed biases).
        The OMR tensors are treated as constants.
    gamma : float
        γ, the overall strength (thesis: 1e-7).
    rule : {"resize", "truncate", "moments"}
        How tensors of different shapes are compared; see the module docstring.
    weights : sequence of float, optional
        The per-layer factors, one per pair; default :func:`sharing_weights` of the number of pairs.  An ablation
        that removes one paired layer (GradSPSA without its interaction block) passes the thesis's factors of the
        pairs that remain, so that removing one layer does not re-weight the others.

    Returns
    -------
    torch.Tensor
        Scalar on the A2S parameters' device; differentiable with respect to the A2S tensors only.
    """
    if rule not in SHARING_RULES:
        raise ValueError(f"gradual_soft_sharing_loss: rule must be one of {SHARING_RULES}, got {rule!r}")
    if gamma < 0:
        raise ValueError(f"gradual_soft_sharing_loss: gamma must be >= 0, got {gamma}")
    if len(omr_layers) != len(a2s_layers) or not omr_layers:
        raise ValueError(
            f"gradual_soft_sharing_loss: need the same non-zero number of OMR and A2S layers, got "
            f"{len(omr_layers)} and {len(a2s_layers)}"
        )
    if weights is None:
        weights = sharing_weights(len(a2s_layers))
    weights = tuple(float(w) for w in weights)
    if len(weights) != len(a2s_layers) or not all(math.isfinite(w) and w >= 0 for w in weights):
        raise ValueError(
            f"gradual_soft_sharing_loss: need one finite weight >= 0 per layer pair ({len(a2s_layers)}), got {weights}"
        )
    total = None
    for s, (w, o_layer, a_layer) in enumerate(zip(weights, omr_layers, a2s_layers), 1):
        omr = _layer_tensors(o_layer, f"OMR layer {s}")
        a2s = _layer_tensors(a_layer, f"A2S layer {s}")
        term = w * sum(_distance(o, a, rule) for o, a in _match(omr, a2s))
        total = term if total is None else total + term
    return gamma * total
