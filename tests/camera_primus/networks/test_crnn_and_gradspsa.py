"""The baseline CRNNs and GradSPSA's A2S network: sizes, shapes, Keras conventions, OMR protection."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mtlnb.camera_primus.networks import losses
from mtlnb.camera_primus.networks import crnn, gradspsa_a2s as gradspsa

V = 100  # vocabulary size for the tests; the output layer has V + 1 = 101 classes


@pytest.fixture(scope="module")
def omr():
    torch.manual_seed(0)
    return crnn.CRNN(crnn.omr_config(V))


@pytest.fixture()
def grad_model(omr):
    torch.manual_seed(1)
    return gradspsa.GradSPSAA2S(gradspsa.GradSPSAConfig(V), omr)


# --- parameter counts, from the layer shapes -----------------------------------------------------------------------
# conv block: C_out·C_in·kh·kw (no bias) + BatchNorm γ, β (2·C_out; running stats are buffers).
# BiLSTM(256) on F inputs, Keras' single bias: 2 directions · 4 gates · 256 · (F + 256 + 1).
# Linear: in·out + out.

OMR_CONVS = (64 * 1 * 25 + 128) + (64 * 64 * 25 + 128) + (128 * 64 * 9 + 256) + (128 * 128 * 9 + 256)  # 325,952
BILSTM_512 = 2 * 4 * 256 * (512 + 256 + 1)  # 1,574,912
OUT_512 = 512 * (V + 1) + (V + 1)  # 51,813


def test_omr_parameter_count(omr):
    assert OMR_CONVS == 325_952 and BILSTM_512 == 1_574_912
    assert crnn.parameter_count(omr) == OMR_CONVS + 2 * BILSTM_512 + OUT_512 == 3_527_589


def test_a2s_parameter_count():
    convs = (8 * 1 * 10 * 2 + 16) + (8 * 8 * 8 * 5 + 16)  # 176 + 2,576
    model = crnn.CRNN(crnn.a2s_config(V))
    assert crnn.parameter_count(model) == convs + 2 * BILSTM_512 + OUT_512 == 3_204_389


def test_gradspsa_parameter_count(grad_model):
    convs = 176 + 2576 + (8 * 8 * 9 + 16)  # conv3: 592
    projections = 2 * (512 * 128 + 128)  # a2s_proj, omr_proj
    attention = 3 * 128 * 128 + 3 * 128 + 128 * 128 + 128  # q, k, v, output projections with biases: 66,048
    feed_forward = (128 * 512 + 512) + (512 * 128 + 128)  # 131,712
    interaction = attention + 2 * 256 + feed_forward  # + two LayerNorms (γ, β): 198,272
    lstm = 2 * 4 * 256 * (640 + 256 + 1)  # reads [conv3 columns 512, interaction 128]: 1,837,056
    out = 1152 * (V + 1) + (V + 1)  # reads [512, 128, BiLSTM 512]
    expected = convs + projections + interaction + lstm + out
    assert expected == 2_170_000 + 1153 * (V + 1)
    trainable = sum(p.numel() for p in grad_model.trainable_parameters())
    assert trainable == expected
    assert crnn.parameter_count(grad_model) == expected + crnn.parameter_count(grad_model.omr)


def test_gradspsa_without_dense_connections_count(omr):
    model = gradspsa.GradSPSAA2S(gradspsa.GradSPSAConfig(V, dense_connections=False), omr)
    lstm = 2 * 4 * 256 * (128 + 256 + 1)  # reads the interaction output only
    expected = 3344 + 131_328 + 198_272 + lstm + OUT_512
    assert sum(p.numel() for p in model.trainable_parameters()) == expected == 1_173_237


# --- lengths and shapes ---------------------------------------------------------------------------------------------


def test_output_lengths():
    assert crnn.omr_config(V).output_lengths(471) == 235
    assert crnn.a2s_config(V).output_lengths(827) == 413  # the real 9.0 s audio's resized CQT width
    assert crnn.a2s_config(V).output_lengths(torch.tensor([827, 850, 3])).tolist() == [413, 425, 1]
    cfg = gradspsa.GradSPSAConfig(V)
    assert cfg.output_lengths([827, 850, 4]).tolist() == [206, 212, 1]  # two width halvings: W // 4
    with pytest.raises(ValueError, match="no output frame"):
        cfg.output_lengths([3])
    with pytest.raises(ValueError, match="no output frame"):
        crnn.omr_config(V).output_lengths(1)


def test_omr_forward_shapes(omr):
    x = torch.rand(1, 1, 64, 471)
    omr.eval()
    with torch.no_grad():
        assert omr.conv_features(x).shape == (1, 128, 4, 235)
        y = omr(x)
    assert y.shape == (1, 235, V + 1)
    assert torch.allclose(y.exp().sum(-1), torch.ones(1, 235), atol=1e-5)


def test_a2s_forward_shape():
    torch.manual_seed(0)
    model = crnn.CRNN(crnn.a2s_config(V))
    y = model(torch.rand(1, 1, 256, 101))
    assert y.shape == (1, 50, V + 1)
    assert [n for n, _ in model.named_children()] == ["conv1", "conv2", "lstm1", "lstm2", "out"]


def test_gradspsa_forward_shape(grad_model):
    y = grad_model(torch.rand(2, 1, 256, 101), torch.rand(2, 1, 64, 60), omr_widths=torch.tensor([60, 41]))
    assert y.shape == (2, 25, V + 1)
    assert torch.allclose(y.exp().sum(-1), torch.ones(2, 25), atol=1e-5)


def test_bad_inputs(omr, grad_model):
    with pytest.raises(ValueError, match=r"\(B, 1, 64, W\)"):
        omr(torch.rand(1, 1, 65, 10))
    with pytest.raises(ValueError, match="floating-point"):
        omr(torch.zeros(1, 1, 64, 10, dtype=torch.int64))
    with pytest.raises(ValueError, match="pairs"):
        grad_model(torch.rand(2, 1, 256, 20), torch.rand(1, 1, 64, 20))
    with pytest.raises(ValueError, match="divisible"):
        crnn.CRNNConfig(V, 60, (8,), ((3, 3),), ((8, 1),))
    with pytest.raises(ValueError, match="sharing_rule"):
        gradspsa.GradSPSAConfig(V, sharing_rule="nearest")


# --- Keras conventions ----------------------------------------------------------------------------------------------


def test_keras_same_padding_even_kernel_width():
    # Kernel (1, 2) = [1, 10] over [1, 2, 3, 4]: Keras pads one zero on the RIGHT, so out[j] = x[j] + 10 x[j+1]
    # = [21, 32, 43, 4] (padding on the left would give [10, 21, 32, 43]).
    conv = nn.Conv2d(1, 1, (1, 2), bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, 10.0]]]]))
    pad = crnn.KerasSamePad((1, 2))
    y = conv(pad(torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]])))
    assert y.flatten().tolist() == [21.0, 32.0, 43.0, 4.0]


def test_keras_same_padding_even_kernel_height():
    # Kernel (2, 1) = [1; 10] down a column [1, 2, 3]: the extra zero goes at the BOTTOM → [21, 32, 3].
    conv = nn.Conv2d(1, 1, (2, 1), bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0], [10.0]]]]))
    y = conv(crnn.KerasSamePad((2, 1))(torch.tensor([[[[1.0], [2.0], [3.0]]]])))
    assert y.flatten().tolist() == [21.0, 32.0, 3.0]


def test_keras_same_padding_amounts():
    # (left, right, top, bottom): k − 1 in total, (k − 1) // 2 before.
    assert crnn.KerasSamePad((10, 2)).padding == (0, 1, 4, 5)
    assert crnn.KerasSamePad((8, 5)).padding == (2, 2, 3, 4)
    assert crnn.KerasSamePad((3, 3)).padding == (1, 1, 1, 1)
    block = crnn.ConvBlock(1, 8, (10, 2), (1, 1))
    assert block(torch.rand(1, 1, 256, 7)).shape == (1, 8, 256, 7)  # "same" keeps the size


def test_columns_keras_order():
    # Keras permutes (B, H, W, C) → (B, W, H, C) and flattens: feature h·C + c.  Value 10·c + h per position.
    x = torch.tensor([[[[0.0], [1.0]], [[10.0], [11.0]]]])  # (B=1, C=2, H=2, W=1)
    assert crnn.columns(x).flatten().tolist() == [0.0, 10.0, 1.0, 11.0]


def test_keras_initialisation(omr):
    bn = omr.conv1.bn
    assert bn.momentum == pytest.approx(0.01) and bn.eps == pytest.approx(1e-3)
    # glorot-uniform limit for conv1: sqrt(6 / (fan_in + fan_out)) = sqrt(6 / (1·25 + 64·25))
    assert omr.conv1.conv.weight.abs().max().item() <= math.sqrt(6 / 1625)
    assert omr.conv1.conv.bias is None
    rnn = omr.lstm1.rnn
    h = 256
    for suffix in ("l0", "l0_reverse"):
        b_ih = getattr(rnn, f"bias_ih_{suffix}")
        b_hh = getattr(rnn, f"bias_hh_{suffix}")
        assert b_ih[h : 2 * h].eq(1).all() and b_ih[:h].eq(0).all() and b_ih[2 * h :].eq(0).all()
        assert b_hh.eq(0).all() and not b_hh.requires_grad
        w_hh = getattr(rnn, f"weight_hh_{suffix}")  # (4H, H) with orthonormal columns
        assert torch.allclose(w_hh.T @ w_hh, torch.eye(h), atol=1e-4)
    assert omr.out.bias.eq(0).all()
    assert omr.lstm1.dropout.p == 0.5


def _tiny_config(vocab_size: int = 5) -> crnn.CRNNConfig:
    return crnn.CRNNConfig(vocab_size, 8, (4, 4), ((3, 2), (3, 3)), ((2, 2), (2, 1)), lstm_units=8)


def test_fixed_lstm_bias_stays_zero_after_a_step():
    torch.manual_seed(0)
    model = crnn.CRNN(_tiny_config())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.rand(2, 1, 8, 20)
    out = model(x)
    loss = losses.ctc_loss(out, torch.tensor([[0, 1], [2, 2]]), model.output_lengths([20, 20]), [2, 2])
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    assert model.lstm1.rnn.bias_hh_l0.eq(0).all()
    assert model.lstm1.rnn.bias_ih_l0.grad is not None


def test_seeded_construction_is_deterministic():
    torch.manual_seed(3)
    a = crnn.CRNN(_tiny_config(7))
    torch.manual_seed(3)
    b = crnn.CRNN(_tiny_config(7))
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(p, q)


# --- GradSPSA: the OMR network is never updated --------------------------------------------------------------------


def test_gradspsa_omr_is_a_frozen_copy(omr, grad_model):
    assert grad_model.omr is not omr
    assert all(not p.requires_grad for p in grad_model.omr.parameters())
    assert all(p.requires_grad for p in crnn.keras_parameters(omr))  # the caller's model is untouched
    grad_model.train()
    assert grad_model.training and grad_model.conv1.training and not grad_model.omr.training
    assert not any(m.training for m in grad_model.omr.modules())


def test_gradspsa_step_leaves_omr_unchanged(grad_model):
    omr_state = {k: v.clone() for k, v in grad_model.omr.state_dict().items()}  # weights and BN statistics
    a2s_before = grad_model.conv2.conv.weight.detach().clone()
    # An optimiser over *all* parameters, the careless way: the OMR must still not move.
    opt = torch.optim.Adam(grad_model.parameters(), lr=1e-3)
    grad_model.train()
    a2s, img = torch.rand(2, 1, 256, 64), torch.rand(2, 1, 64, 40)
    out = grad_model(a2s, img, omr_widths=[40, 30])
    loss = losses.ctc_loss(out, torch.tensor([[1, 2, 3], [4, 5, 0]]), grad_model.output_lengths([64, 60]), [3, 2])
    loss = loss + grad_model.sharing_loss()
    loss.backward()
    assert all(p.grad is None for p in grad_model.omr.parameters())
    assert grad_model.conv2.conv.weight.grad is not None and grad_model.interaction.norm1.weight.grad is not None
    opt.step()
    for k, v in grad_model.omr.state_dict().items():
        assert torch.equal(v, omr_state[k]), k
    assert not torch.equal(grad_model.conv2.conv.weight, a2s_before)


def test_gradspsa_sharing_loss_reaches_only_paired_a2s_layers(grad_model):
    grad_model.zero_grad(set_to_none=True)
    grad_model.sharing_loss().backward()
    assert all(p.grad is None for p in grad_model.omr.parameters())
    for name in ("conv2", "interaction", "lstm"):
        assert all(p.grad is not None for p in crnn.keras_parameters(getattr(grad_model, name))), name
    for name in ("conv1", "conv3", "a2s_proj", "omr_proj", "out"):
        assert all(p.grad is None for p in getattr(grad_model, name).parameters()), name


def test_gradspsa_sharing_pairs_shapes(grad_model):
    omr_layers, a2s_layers = grad_model.sharing_layers()
    assert [tuple(t.shape) for t in omr_layers[0]] == [(128, 64, 3, 3), (128,), (128,)]  # OMR conv3
    assert [tuple(t.shape) for t in a2s_layers[0]] == [(8, 8, 8, 5), (8,), (8,)]  # A2S conv2
    assert len(omr_layers[1]) == 6 and len(a2s_layers[1]) == 12  # BiLSTM vs Transformer layer
    assert [tuple(t.shape) for t in a2s_layers[2]][:3] == [(1024, 640), (1024, 256), (1024,)]


def test_interaction_ignores_masked_memory():
    torch.manual_seed(0)
    block = gradspsa.InteractionBlock(16, 2, 32, 0.1, 0.1, 1e-5).eval()
    q, mem = torch.rand(1, 5, 16), torch.rand(1, 7, 16)
    mask = torch.tensor([[False] * 4 + [True] * 3])
    garbage = mem.clone()
    garbage[:, 4:] = 100.0
    with torch.no_grad():
        assert torch.allclose(block(q, mem, mask), block(q, garbage, mask), atol=1e-6)
        assert not torch.allclose(block(q, mem), block(q, garbage))


# --- the conv stack both networks share (crnn.ConvStackConfig, crnn.ConvStackNet) ----------------------------------


@pytest.mark.parametrize("config, sizes", [
    (crnn.omr_config(V), (16, 2, 512, V + 1)),
    (crnn.a2s_config(V), (4, 2, 512, V + 1)),
    (gradspsa.GradSPSAConfig(V), (4, 4, 512, V + 1)),
])
def test_conv_stack_config_sizes(config, sizes):
    assert isinstance(config, crnn.ConvStackConfig)
    assert (config.height_reduction, config.time_reduction, config.features_per_column, config.num_classes) == sizes
    assert config.output_lengths(850) == 850 // sizes[1]


def test_conv_stack_config_checks_name_their_class():
    with pytest.raises(ValueError, match=r"^CRNNConfig: filters, kernels and pools need one entry per conv block, "
                                         r"got 1, 0, 1$"):
        crnn.CRNNConfig(V, 64, (8,), (), ((2, 2),))
    with pytest.raises(ValueError, match=r"^GradSPSAConfig: .* conv block \(at least conv1, conv2\), got 1, 1, 1$"):
        gradspsa.GradSPSAConfig(V, filters=(8,), kernels=((3, 3),), pools=((2, 2),))
    with pytest.raises(ValueError, match=r"^GradSPSAConfig.vocab_size must be >= 1, got 0$"):
        gradspsa.GradSPSAConfig(0)
    with pytest.raises(ValueError, match=r"^CRNNConfig.input_height 60 is not divisible .* reduction 16$"):
        crnn.CRNNConfig(V, 60, (8,) * 4, ((3, 3),) * 4, ((2, 1),) * 4)


def test_conv_stack_net_registers_blocks_first_under_their_names(omr, grad_model):
    for net, n in ((omr, 4), (grad_model, 3)):
        assert isinstance(net, crnn.ConvStackNet) and net.conv_names == tuple(f"conv{i}" for i in range(1, n + 1))
        assert [name for name, _ in net.named_children()][:n] == list(net.conv_names)
    x = torch.rand(1, 1, 64, 20)
    omr.eval()
    with torch.no_grad():
        expected = omr.conv4(omr.conv3(omr.conv2(omr.conv1(x))))
        assert torch.equal(omr._run_conv_blocks(x), expected) and torch.equal(omr.conv_features(x), expected)
