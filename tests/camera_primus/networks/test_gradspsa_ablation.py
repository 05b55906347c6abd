"""GradSPSA's ablation switches: each addition removed alone, and the sharing loss's weights for the pairs left."""

from dataclasses import replace

import pytest
import torch

from mtlnb.camera_primus.networks import crnn, gradspsa_a2s as g, losses

VOCAB = 7


def _omr():
    torch.manual_seed(0)
    cfg = replace(crnn.omr_config(VOCAB), filters=(4, 4, 8, 8), lstm_units=8)
    return crnn.CRNN(cfg).eval()


def _config():
    return replace(g.GradSPSAConfig(VOCAB), input_height=64, lstm_units=8, d_model=16, ff_dim=32)


def _net(addition):
    torch.manual_seed(1)
    return g.GradSPSAA2S(g.ablate(_config(), addition), _omr())


@pytest.mark.parametrize("addition", [None, *g.ADDITIONS])
def test_each_ablation_transcribes_with_its_own_frame_rate(addition):
    net = _net(addition).eval()
    audio, image = torch.randn(2, 1, 64, 48), torch.randn(2, 1, 64, 40)
    out = net(audio, image, torch.tensor([40, 30]))
    frames = 48 // (2 if addition == "third_conv_block" else 4)
    assert out.shape == (2, frames, VOCAB + 1)
    assert int(net.output_lengths(48)) == frames
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, frames), atol=1e-5)


def test_the_config_changes_of_each_ablation():
    cfg = _config()
    assert g.ablate(cfg, None) is cfg
    assert g.ablate(cfg, "dense_connections").dense_connections is False
    assert g.ablate(cfg, "interaction_block").interaction_block is False
    assert g.ablate(cfg, "sharing_loss").sharing_gamma == 0.0
    two = g.ablate(cfg, "third_conv_block")
    assert (two.filters, two.kernels, two.pools) == (cfg.filters[:2], cfg.kernels[:2], cfg.pools[:2])
    with pytest.raises(ValueError, match="no third one"):
        g.ablate(two, "third_conv_block")
    with pytest.raises(ValueError, match="no dense_connections"):
        g.ablate(g.ablate(cfg, "dense_connections"), "dense_connections")
    with pytest.raises(ValueError, match="addition must be one of"):
        g.ablate(cfg, "attention")
    with pytest.raises(ValueError, match="sharing_gamma"):
        replace(cfg, sharing_gamma=-1.0)


def test_without_the_interaction_block_the_image_is_not_read():
    net = _net("interaction_block").eval()
    assert not hasattr(net, "interaction") and not hasattr(net, "omr_proj")
    audio = torch.randn(1, 1, 64, 48)
    a = net(audio, torch.randn(1, 1, 64, 40))
    b = net(audio, torch.zeros(1, 1, 64, 12))
    assert torch.equal(a, b)
    full = _net(None).eval()
    assert not torch.equal(full(audio, torch.randn(1, 1, 64, 40)), full(audio, torch.zeros(1, 1, 64, 40)))


def test_sharing_pairs_and_weights_without_the_interaction_block():
    full, cut = _net(None), _net("interaction_block")
    w = losses.sharing_weights(3)
    assert full.sharing_pairs() == g.SHARING_PAIRS and full.sharing_weights() == pytest.approx(w)
    assert cut.sharing_pairs() == (g.SHARING_PAIRS[0], g.SHARING_PAIRS[2])
    assert cut.sharing_weights() == pytest.approx((w[0], w[2]))  # the thesis's factors, not re-weighted
    expected = losses.gradual_soft_sharing_loss(*cut.sharing_layers(), gamma=1e-7, weights=(w[0], w[2]))
    assert cut.sharing_loss().item() == pytest.approx(expected.item())


def test_sharing_loss_off_and_weights_validated():
    net = _net("sharing_loss")
    assert net.sharing_loss().item() == 0.0
    layers = _net(None).sharing_layers()
    with pytest.raises(ValueError, match="one finite weight"):
        losses.gradual_soft_sharing_loss(*layers, weights=(1.0, 1.0))
    with pytest.raises(ValueError, match="one finite weight"):
        losses.gradual_soft_sharing_loss(*layers, weights=(1.0, -1.0, 1.0))
    default = losses.gradual_soft_sharing_loss(*layers)
    same = losses.gradual_soft_sharing_loss(*layers, weights=losses.sharing_weights(3))
    assert default.item() == pytest.approx(same.item())
