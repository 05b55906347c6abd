"""CTC wrapper and gradual soft parameter sharing loss: hand-computed values, gradients, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from mtlnb.camera_primus.networks import losses

E = math.e
E13 = 1.3956124250860895  # e^(1/3)
E23 = 1.9477340410546757  # e^(2/3)
E12 = 1.6487212707001282  # e^(1/2)


# --- CTC ---------------------------------------------------------------------------------------------------------


def _log(p):
    return torch.tensor(p, dtype=torch.float64).log()


def test_ctc_single_frame_single_symbol():
    # C = 2: symbol 0 and the blank 1 (last, the default).  One frame, target "0": the only path is "0".
    lp = _log([[[0.25, 0.75]]])  # (B=1, T=1, C=2)
    loss = losses.ctc_loss(lp, torch.tensor([[0]]), [1], [1])
    assert loss.item() == pytest.approx(math.log(4))


def test_ctc_two_frames_batch_mean_and_padding():
    # Item 0: two uniform frames, target "0": paths 00, 0-, -0 → p = 3 · 0.25 = 0.75.
    # Item 1: one valid frame (the second is padding), p("0") = 0.25.
    # Keras-style mean over the batch: (−log 0.75 − log 0.25) / 2.
    lp = _log([[[0.5, 0.5], [0.5, 0.5]], [[0.25, 0.75], [0.9, 0.1]]])
    targets = torch.tensor([[0], [0]])
    expected = [-math.log(0.75), math.log(4)]
    per = losses.ctc_loss(lp, targets, [2, 1], [1, 1], reduction="none")
    assert per.tolist() == pytest.approx(expected)
    assert losses.ctc_loss(lp, targets, [2, 1], [1, 1]).item() == pytest.approx(sum(expected) / 2)
    assert losses.ctc_loss(lp, targets, [2, 1], [1, 1], reduction="sum").item() == pytest.approx(sum(expected))
    # Concatenated 1-D targets are the same thing.
    assert losses.ctc_loss(lp, torch.tensor([0, 0]), [2, 1], [1, 1]).item() == pytest.approx(sum(expected) / 2)


def test_ctc_mean_is_not_divided_by_target_length():
    # Three uniform frames over {0, 1, blank}, target "01": the alignments are 001, 011, 01-, 0-1, -01 → 5/27.
    lp = torch.full((1, 3, 3), math.log(1 / 3), dtype=torch.float64)
    loss = losses.ctc_loss(lp, torch.tensor([[0, 1]]), [3], [2])
    assert loss.item() == pytest.approx(-math.log(5 / 27))


def test_ctc_explicit_blank_first():
    # Blank 0, symbol 1: one frame, p(1) = 0.2.
    lp = _log([[[0.8, 0.2]]])
    assert losses.ctc_loss(lp, torch.tensor([[1]]), [1], [1], blank=0).item() == pytest.approx(-math.log(0.2))


def test_ctc_infinite_loss_raises():
    # "00" needs three frames (0, blank, 0); two frames cannot align it: the loss is infinite and must not be hidden.
    lp = _log([[[0.5, 0.5], [0.5, 0.5]]])
    with pytest.raises(ValueError, match="infinite loss for batch items \\[0\\]"):
        losses.ctc_loss(lp, torch.tensor([[0, 0]]), [2], [2])


@pytest.mark.parametrize(
    "targets, in_len, tgt_len, match",
    [
        (torch.tensor([[1]]), [1], [1], "differ from the blank"),  # the blank as a label
        (torch.tensor([[0]]), [3], [1], "input_lengths"),  # longer than log_probs
        (torch.tensor([[0]]), [1, 1], [1], "input_lengths must have shape"),
        (torch.tensor([[0]]), [1], [2], "padded targets"),
        (torch.tensor([[0.0]]), [1], [1], "integer"),
    ],
)
def test_ctc_bad_input(targets, in_len, tgt_len, match):
    lp = _log([[[0.25, 0.75]]])
    with pytest.raises(ValueError, match=match):
        losses.ctc_loss(lp, targets, in_len, tgt_len)


def test_ctc_rejects_time_major():
    with pytest.raises(ValueError, match="log_probs must be"):
        losses.ctc_loss(torch.zeros(3, 2), torch.tensor([[0]]), [1], [1])


# --- sharing weights ---------------------------------------------------------------------------------------------


def test_sharing_weights_three_layers():
    # e − e^((S−s)/S), S = 3: e − e^(2/3), e − e^(1/3), e − e^0.
    assert losses.sharing_weights(3) == pytest.approx((E - E23, E - E13, E - 1), abs=1e-12)
    assert losses.sharing_weights(3) == pytest.approx((0.7705477874, 1.3226694034, 1.7182818285), abs=1e-9)


def test_sharing_weights_grow_with_depth_and_bad_s():
    w = losses.sharing_weights(5)
    assert all(a < b for a, b in zip(w, w[1:]))
    assert losses.sharing_weights(1) == pytest.approx((E - 1,))
    with pytest.raises(ValueError, match="shared layers"):
        losses.sharing_weights(0)


# --- resize and the rules ----------------------------------------------------------------------------------------


def test_resize_bilinear_corners_aligned():
    x = torch.tensor([[0.0, 2.0], [4.0, 6.0]])
    expected = torch.tensor([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [4.0, 5.0, 6.0]])
    assert torch.allclose(losses.resize(x, (3, 3)), expected)
    # Shrinking samples: 0..4 at positions 0, 2, 4.
    assert losses.resize(torch.arange(5.0), (3,)).tolist() == pytest.approx([0.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="rank"):
        losses.resize(x, (4,))


@pytest.mark.parametrize(
    "rule, distance",
    [
        ("resize", 0 + 4 + 16),  # OMR 0..4 resampled to (0, 2, 4)
        ("truncate", 0 + 1 + 4),  # the first three: (0, 1, 2)
        ("moments", 3 * (2**2 + 2)),  # n_A2S · ((μ 2 − 0)² + (σ √2 − 0)²)
    ],
)
def test_rules_one_pair(rule, distance):
    omr = [torch.arange(5.0)]
    a2s = [torch.zeros(3, requires_grad=True)]
    loss = losses.gradual_soft_sharing_loss([omr], [a2s], gamma=1.0, rule=rule)
    assert loss.item() == pytest.approx((E - 1) * distance, rel=1e-6)


@pytest.mark.parametrize("rule", ["resize", "truncate"])
def test_equal_shapes_is_frobenius(rule):
    omr = [torch.tensor([[1.0, 2.0], [3.0, 4.0]])]
    a2s = [torch.zeros(2, 2, requires_grad=True)]
    assert losses.gradual_soft_sharing_loss([omr], [a2s], gamma=1.0, rule=rule).item() == pytest.approx((E - 1) * 30)


def test_structures_differ_layers_are_flattened():
    # Two OMR tensors vs one A2S tensor: no common roles, so [1, 2, 3, 4] is compared with three zeros.
    omr = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])]
    a2s = [torch.zeros(3, requires_grad=True)]
    # resize: positions 0, 1.5, 3 → (1, 2.5, 4) → 1 + 6.25 + 16
    assert losses.gradual_soft_sharing_loss([omr], [a2s], 1.0, "resize").item() == pytest.approx((E - 1) * 23.25)
    assert losses.gradual_soft_sharing_loss([omr], [a2s], 1.0, "truncate").item() == pytest.approx((E - 1) * 14)


def test_same_structure_matched_by_role():
    # Same structure (a matrix and a vector each): matrix with matrix, vector with vector, never across.
    omr = [torch.ones(2, 2), torch.full((4,), 5.0)]
    a2s = [torch.ones(2, 2, requires_grad=True), torch.full((4,), 5.0, requires_grad=True)]
    assert losses.gradual_soft_sharing_loss([omr], [a2s], 1.0, "truncate").item() == 0.0


def test_weights_and_gamma_across_layers():
    # S = 2: weights e − e^(1/2), e − 1; distances 1 and 4.
    omr = [[torch.tensor([1.0])], [torch.tensor([2.0])]]
    a2s = [[torch.zeros(1, requires_grad=True)], [torch.zeros(1, requires_grad=True)]]
    loss = losses.gradual_soft_sharing_loss(omr, a2s, gamma=1e-7)
    assert loss.item() == pytest.approx(1e-7 * ((E - E12) * 1 + (E - 1) * 4))


def test_gradients_reach_only_a2s():
    omr = torch.nn.Linear(3, 2)  # trainable on purpose: the loss itself must treat it as constant
    a2s = torch.nn.Linear(3, 2)
    loss = losses.gradual_soft_sharing_loss([omr], [a2s], gamma=0.5)
    loss.backward()
    assert omr.weight.grad is None and omr.bias.grad is None
    # d/dθ_A2S of γ w ‖θ_OMR − θ_A2S‖² = 2 γ w (θ_A2S − θ_OMR), w = e − 1 (S = 1).
    expected = 2 * 0.5 * (E - 1) * (a2s.weight.detach() - omr.weight.detach())
    assert torch.allclose(a2s.weight.grad, expected)


def test_moments_finite_gradient_for_constant_tensors():
    # LayerNorm/BatchNorm γ start as all ones: the σ term must not give NaN gradients.
    a2s = torch.ones(4, requires_grad=True)
    loss = losses.gradual_soft_sharing_loss([[torch.ones(6)]], [[a2s]], 1.0, "moments")
    loss.backward()
    assert torch.isfinite(a2s.grad).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(rule="nearest"), "rule must be one of"),
        (dict(gamma=-1.0), "gamma"),
    ],
)
def test_sharing_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        losses.gradual_soft_sharing_loss([[torch.zeros(1)]], [[torch.zeros(1)]], **kwargs)


def test_sharing_layer_count_mismatch_and_empty_layer():
    with pytest.raises(ValueError, match="same non-zero number"):
        losses.gradual_soft_sharing_loss([[torch.zeros(1)]], [])
    with pytest.raises(ValueError, match="A2S layer 1 has no parameters"):
        losses.gradual_soft_sharing_loss([[torch.zeros(1)]], [[]])
