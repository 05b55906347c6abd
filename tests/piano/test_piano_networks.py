"""The piano networks: parameter counts, shapes, noise layers, straight-through ReLU, cross-stitch gradients."""

from __future__ import annotations

import math

import pytest
import torch

from mtlnb.piano import cross_stitch as CS, networks as P, training

TINY = P.PianoNetConfig(stem=((6, 3, 3), (6, 3, 3), (6, 1, 35), (6, 5, 1)), head=(2, 3, 3))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_icassp19_parameter_count_matches_the_original():
    # ICASSP19's network (three heads) has 326,396 parameters (rainerkelz/ICASSP19); counted by hand:
    # BN 2; convs 1*30*9+30, 30*30*35+30, 30*30*7+30; per head conv 30*10*9+10 and linear 1060*88+88.
    by_hand = 2 + (270 + 30) + (31500 + 30) + (6300 + 30) + 3 * ((2700 + 10) + (1060 * 88 + 88))
    assert by_hand == 326_396
    assert P.count_parameters(P.HardSharingNet(P.ICASSP19)) == 326_396


def test_hard_sharing_parameter_count_by_hand():
    # Our reading: stem 96×3×3, 96×3×3, 96×1×35, 96×5×1; heads 10×3×3 -> Linear(10*104 -> 88 | 1).
    stem = (1 * 96 * 9 + 96) + (96 * 96 * 9 + 96) + (96 * 96 * 35 + 96) + (96 * 96 * 5 + 96)
    head_conv = 96 * 10 * 9 + 10
    heads = 4 * (head_conv + 1040 * 88 + 88) + (head_conv + 1040 + 1)
    assert P.count_parameters(P.HardSharingNet()) == 2 + stem + heads == 863_557


def test_cross_stitch_parameter_count_by_hand():
    # Five columns at 48 maps, four cross-stitch units of 5×5 α, five heads on 48 maps.
    col = (1 * 48 * 9 + 48) + (48 * 48 * 9 + 48) + (48 * 48 * 35 + 48) + (48 * 48 * 5 + 48)
    head_conv = 48 * 10 * 9 + 10
    heads = 4 * (head_conv + 1040 * 88 + 88) + (head_conv + 1040 + 1)
    expected = 2 + 5 * col + 4 * 25 + heads
    assert P.count_parameters(CS.CrossStitchNet()) == expected == 956_825
    # per channel: 4 units × 25 pairs × 48 channels instead of 4 × 25
    assert P.count_parameters(CS.CrossStitchNet(alpha="channel")) == expected - 100 + 4 * 25 * 48
    # "roughly comparable" to the hard-sharing net (paper §IV): within 11 %
    hard = P.count_parameters(P.HardSharingNet())
    assert abs(expected / hard - 1) < 0.11
    maps, n = CS.matched_maps(hard)
    assert abs(n - hard) <= abs(P.count_parameters(CS.CrossStitchNet(CS.CROSS_STITCH.with_maps(maps + 1))) - hard)
    assert abs(n - hard) <= abs(P.count_parameters(CS.CrossStitchNet(CS.CROSS_STITCH.with_maps(maps - 1))) - hard)


@pytest.mark.parametrize("make", [lambda: P.HardSharingNet(TINY), lambda: CS.CrossStitchNet(TINY, "detached")])
def test_output_shapes_and_ranges(make):
    torch.manual_seed(0)
    net = make()
    out = net(torch.randn(5, 11, 144))
    assert list(out) == list(P.TASKS)
    assert {t: tuple(v.shape) for t, v in out.items()} == {"onsets": (5, 88), "frames": (5, 88), "offsets": (5, 88),
                                                           "velocity": (5, 88), "sustain": (5, 1)}
    assert (out["velocity"] >= 0).all() and (out["sustain"] >= 0).all()
    net.eval()
    pred = net.predict(torch.randn(5, 1, 11, 144))
    assert all(((v >= 0) & (v <= 1)).all() for t, v in pred.items() if t in P.BINARY)
    with pytest.raises(ValueError, match="expected input"):
        net(torch.randn(5, 12, 144))


def test_shape_trace_of_the_default_stem():
    assert P.HARD_SHARING.feature_shape == (3, 106)
    assert P.HARD_SHARING.head_features == 1040
    assert P.ICASSP19.feature_shape == (3, 108) and P.ICASSP19.head_features == 1060
    with pytest.raises(ValueError, match="exactly one frame"):
        P.PianoNetConfig(stem=((8, 3, 3),))


def test_gaussian_dropout_moments_and_eval_identity():
    torch.manual_seed(0)
    layer = P.GaussianDropout(0.2)  # std sqrt(0.2 / 0.8) = 0.5
    x = torch.full((400_000,), 2.0)
    y = layer(x)
    assert abs(y.mean().item() - 2.0) < 0.01
    assert abs(y.std().item() - 2.0 * 0.5) < 0.01
    layer.eval()
    assert torch.equal(layer(x), x)
    with pytest.raises(ValueError):
        P.GaussianDropout(1.0)


def test_gaussian_noise_moments_and_eval_identity():
    torch.manual_seed(0)
    layer = P.GaussianNoise(0.3)
    x = torch.full((400_000,), -1.0)
    y = layer(x)
    assert abs(y.mean().item() + 1.0) < 0.01 and abs(y.std().item() - 0.3) < 0.01
    layer.eval()
    assert torch.equal(layer(x), x)


# ---------------------------------------------------------------------------------------------------- the noise


def _circular(table: P.NoiseTable) -> torch.Tensor:
    values = table._values[:table.size]
    return torch.cat([values, values])


def test_noise_table_windows_are_circular_slices_from_random_offsets():
    table = P.NoiseTable(seed=4, size=1000)
    assert torch.equal(table._values, torch.randn(1000, generator=torch.Generator().manual_seed(4)))
    ring = _circular(table)
    torch.manual_seed(0)
    offsets = []
    for _ in range(200):
        w = table.window(300)
        assert w.shape == (300,)
        starts = (ring[:1000] == w[0]).nonzero().flatten().tolist()
        assert len(starts) == 1 and torch.equal(ring[starts[0]:starts[0] + 300], w)
        offsets.append(starts[0])
    assert any(o > 700 for o in offsets)  # windows that run past the end continue at the table's head
    assert len(set(offsets)) > 150  # offsets drawn anew each time
    torch.manual_seed(0)  # offsets come from torch's generator: the same seed, the same windows
    again = [(ring[:1000] == table.window(300)[0]).nonzero().item() for _ in range(200)]
    assert again == offsets
    with pytest.raises(ValueError, match="at least 1,002"):
        table.window(501)


def test_standard_normal_sources():
    like = torch.empty(40, 50, 200)
    torch.manual_seed(2)
    fresh = P.standard_normal(like, "generator")
    torch.manual_seed(2)
    assert torch.equal(fresh, torch.randn(40, 50, 200))
    for source in ("table", "auto"):  # "auto" is the table on the CPU
        torch.manual_seed(2)
        e = P.standard_normal(like, source)
        assert e.shape == like.shape and e.dtype == like.dtype
        table = P.noise_table(like)
        assert table.seed == 2
        ring = _circular(table)
        start = (ring[:table.size] == e.flatten()[0]).nonzero().item()
        assert torch.equal(ring[start:start + e.numel()], e.flatten())
        assert abs(e.mean().item()) < 0.01 and abs(e.std().item() - 1) < 0.01  # N(0, 1) within a draw
    assert P.resolved_source("auto", torch.empty(3, device="meta")) == "generator"  # not the CPU
    assert P.resolved_source("auto", torch.empty(P.NOISE_TABLE_SIZE // 2)) == "table"  # the largest draw it takes
    assert P.resolved_source("auto", torch.empty(P.NOISE_TABLE_SIZE // 2 + 1)) == "generator"
    assert P.standard_normal(like.double(), "table").dtype == torch.float64
    with pytest.raises(ValueError, match="noise must be one of"):
        P.standard_normal(like, "philox")
    with pytest.raises(ValueError, match="noise must be one of"):
        P.PianoNetConfig(noise="philox")
    with pytest.raises(ValueError, match="noise must be one of"):
        training.ModelSpec("hard", noise="philox")
    assert training.PianoRun(training.ModelSpec("hard", maps=8, noise="generator"), 0.05).name == \
        "hard-m8-noise_generator-lr0.05-vel1-sus1"


def test_auto_draws_what_does_not_fit_the_table_from_the_generator(monkeypatch):
    monkeypatch.setattr(P, "NOISE_TABLE_SIZE", 1000)
    monkeypatch.setattr(P, "_TABLES", {})
    small, large = torch.empty(20, 25), torch.empty(20, 26)  # 500 numbers fit a 1,000-number table, 520 do not
    torch.manual_seed(6)
    assert torch.equal(P.standard_normal(large), torch.randn(20, 26, generator=torch.Generator().manual_seed(6)))
    e = P.standard_normal(small)
    ring = _circular(P.noise_table(small))
    assert P.noise_table(small).size == 1000
    start = (ring[:1000] == e.flatten()[0]).nonzero().item()
    assert torch.equal(ring[start:start + 500], e.flatten())
    with pytest.raises(ValueError, match="at least 1,040"):
        P.standard_normal(large, "table")


@pytest.mark.parametrize("arch", ["hard", "cross_stitch"])
def test_training_never_writes_into_the_noise_table(arch):
    torch.manual_seed(0)
    net = training.ModelSpec(arch, maps=8).build().train()
    x = torch.randn(6, 11, 144)
    sum(v.square().mean() for v in net(x).values()).backward()
    sum(v.square().mean() for v in net.reference(x).values()).backward()
    table = P.noise_table(x)
    assert table.seed == 0 and table._values.numel() > table.size  # drawn from, windows wrapped at least once
    assert torch.equal(table._values[:table.size],
                       torch.randn(table.size, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(table._values[table.size:], table._values[:table._values.numel() - table.size])


def test_straight_through_relu_gradient_is_the_identity():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0], requires_grad=True)
    y = P.straight_through_relu(x)
    assert y.tolist() == [0.0, 0.0, 0.0, 0.5, 3.0]
    y.backward(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert x.grad.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]  # an ordinary ReLU would give 0, 0, 0, 4, 5
    # inside a network: a dead velocity head (all outputs < 0) still gets a gradient
    torch.manual_seed(0)
    net = P.HardSharingNet(TINY)
    with torch.no_grad():
        net.heads["sustain"].linear.bias.fill_(-100.0)
    out = net(torch.randn(4, 11, 144))
    assert (out["sustain"] == 0).all()
    (out["sustain"] - 1).square().mean().backward()
    assert net.heads["sustain"].linear.weight.grad.abs().sum() > 0


def test_glorot_uniform_bounds_and_zero_biases():
    torch.manual_seed(0)
    net = P.HardSharingNet(TINY)
    conv = net.stem[2][0]  # 6 -> 6, 1×35
    bound = math.sqrt(6 / (6 * 35 + 6 * 35))
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert all((m.bias == 0).all() for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    # a cross-stitch column's conv has the bounds of one column's conv, not of the stacked one
    cs = CS.CrossStitchNet(TINY)
    grouped = cs.blocks[2][0]  # 5 columns of 6 -> 6, 1×35
    assert grouped.weight.abs().max() <= bound and grouped.weight.abs().max() > 0.9 * bound
    first = cs.blocks[0][0]  # 1 -> 5·6, 3×3: fans 9 and 6·9
    b0 = math.sqrt(6 / (9 + 54))
    assert first.weight.abs().max() <= b0 and first.weight.abs().max() > 0.8 * b0


@pytest.mark.parametrize("alpha", ["task", "channel"])
def test_cross_stitch_init(alpha):
    unit = CS.CrossStitchUnit(5, 3, init="imbalanced", alpha=alpha)
    a = unit.alpha if alpha == "task" else unit.alpha[:, :, 0]
    assert torch.allclose(torch.diagonal(a), torch.full((5,), 0.9))
    assert torch.allclose(a.sum(1), torch.full((5,), 0.9 + 4 * 0.1))  # the paper's formula, rows sum to 1.3
    bal = CS.CrossStitchUnit(5, 3, init="balanced", alpha=alpha)
    assert torch.allclose(bal.alpha, torch.full_like(bal.alpha, 0.2))


def test_cross_stitch_unit_combines_columns():
    unit = CS.CrossStitchUnit(2, 1, init="imbalanced")
    z = torch.tensor([1.0, 10.0]).reshape(1, 2, 1, 1)  # column 0 holds 1, column 1 holds 10
    out = unit(z).flatten().tolist()
    assert out == pytest.approx([0.9 * 1 + 0.1 * 10, 0.1 * 1 + 0.9 * 10])


def _column_grads(net: CS.CrossStitchNet) -> list[float]:
    """Summed |grad| of each column's conv weights over all stem blocks."""
    m = len(net.config.tasks)
    sums = [0.0] * m
    for block in net.blocks:
        g = block[0].weight.grad
        for k, part in enumerate(g.chunk(m, dim=0)):
            sums[k] += part.abs().sum().item()
    return sums


@pytest.mark.parametrize("mode", ["full", "detached"])
def test_detached_mode_stops_gradients_across_tasks_but_alpha_learns(mode):
    torch.manual_seed(0)
    net = CS.CrossStitchNet(TINY, mode=mode, init="imbalanced")
    out = net(torch.randn(8, 11, 144))
    out["onsets"].square().mean().backward()  # the loss of task 0 only
    grads = _column_grads(net)
    assert grads[0] > 0
    if mode == "detached":
        assert grads[1:] == [0.0] * 4  # no gradient reached another task's column
    else:
        assert all(g > 0 for g in grads[1:])  # the full network lets it through
    for unit in net.units:
        # α of row 0 (how task 0 mixes the columns) learns in both modes, from ∂L/∂z̃ ...
        assert (unit.alpha.grad[0] != 0).all()
    # ... and in the detached net no other row gets anything from the task-0 loss either
    if mode == "detached":
        assert all((unit.alpha.grad[1:] == 0).all() for unit in net.units)


def test_detached_and_full_agree_in_the_forward_pass():
    torch.manual_seed(0)
    full = CS.CrossStitchNet(TINY, mode="full", init="imbalanced").eval()
    det = CS.CrossStitchNet(TINY, mode="detached", init="imbalanced").eval()
    det.load_state_dict(full.state_dict())
    x = torch.randn(3, 11, 144)
    a, b = full(x), det(x)
    assert all(torch.allclose(a[t], b[t], atol=1e-6) for t in P.TASKS)


def test_build_from_spec_is_deterministic_under_a_seed():
    spec = training.ModelSpec("cross_stitch", "detached", "balanced", maps=8)
    torch.manual_seed(3)
    a = spec.build()
    torch.manual_seed(3)
    b = spec.build()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert a.config.stem[0][0] == 4  # cross-stitch columns get half the hard net's maps (96 -> 48)
    with pytest.raises(ValueError, match="arch"):
        training.ModelSpec("soft")


# ------------------------------------------------------------------------------ the fast path and its reference

SMALL = P.HARD_SHARING.with_maps(8)  # mini-like shapes (11 × 144 input, the paper's kernels), cheap enough for CI

NETS = {
    "hard": lambda: P.HardSharingNet(SMALL),
    "icassp19": lambda: P.HardSharingNet(P.ICASSP19),
    "hard, no input norm, no stem noise": lambda: P.HardSharingNet(
        P.PianoNetConfig(stem=SMALL.stem, input_norm=False, stem_dropout=0.0, stem_noise=0.0)),
    "cross-stitch full": lambda: CS.CrossStitchNet(SMALL.with_maps(4), "full", "imbalanced"),
    "cross-stitch detached": lambda: CS.CrossStitchNet(SMALL.with_maps(4), "detached", "balanced"),
    "cross-stitch per channel": lambda: CS.CrossStitchNet(SMALL.with_maps(4), "full", "imbalanced", "channel"),
}


def _outputs_and_grads(net, path, x, seed):
    """Outputs, loss and parameter gradients of ``path`` (``net`` or ``net.reference``) under noise seed ``seed``."""
    net.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    out = path(x)
    loss = sum((v - 0.5).square().mean() for v in out.values())
    loss.backward()
    return out, {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", list(NETS))
def test_fast_path_is_the_reference_function(name):
    torch.manual_seed(0)
    net = NETS[name]()
    with torch.no_grad():  # a non-trivial input norm, so that folding γ and β into the first conv is exercised
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.fill_(1.7), m.bias.fill_(-0.3)
    x = torch.randn(6, 11, 144) * 2 + 1
    ref_out, ref_grads = _outputs_and_grads(net, net.reference, x, seed=5)
    fast_out, fast_grads = _outputs_and_grads(net, net, x, seed=5)
    for t in P.TASKS if name != "icassp19" else P.BINARY:
        # the same noise, drawn in the same order: equal to float rounding (a different draw differs by O(1))
        assert torch.allclose(fast_out[t], ref_out[t], rtol=1e-4, atol=1e-5), t
    assert set(fast_grads) == set(ref_grads)
    for k, g in ref_grads.items():
        assert torch.allclose(fast_grads[k], g, rtol=1e-3, atol=1e-5 * g.abs().max().item() + 1e-7), k
    net.eval()  # no noise; BatchNorm from its running statistics
    with torch.no_grad():
        a, b = net(x), net.reference(x)
    assert all(torch.allclose(a[t], b[t], rtol=1e-4, atol=1e-5) for t in a)


def test_fast_path_updates_batchnorm_statistics_as_the_module():
    torch.manual_seed(0)
    fast, ref = P.HardSharingNet(SMALL), P.HardSharingNet(SMALL)
    ref.load_state_dict(fast.state_dict())
    for k in range(3):
        x = torch.randn(8, 11, 144) * (k + 1) + k
        fast(x), ref.reference(x)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.allclose(getattr(fast.input_norm, name).float(), getattr(ref.input_norm, name).float()), name


@pytest.mark.parametrize("arch, mode, noise", [("hard", "full", "auto"), ("cross_stitch", "full", "auto"),
                                               ("cross_stitch", "detached", "auto"), ("hard", "full", "generator"),
                                               ("cross_stitch", "full", "generator")])
def test_twenty_updates_give_the_reference_losses(arch, mode, noise):
    """Training with the fast path gives the losses of the plain modules for a seed (to float tolerance)."""

    class Reference(torch.nn.Module):  # the same parameters, trained through the reference path
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.reference(x)

    spec = training.ModelSpec(arch, mode, maps=8, noise=noise)
    task = training.PianoTask({"velocity": 0.5, "sustain": 0.1})
    data = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(20):
        on = (torch.rand(16, 88, generator=data) < 0.1).float()
        batches.append({"x": torch.rand(16, 11, 144, generator=data) * 3, "onsets": on, "frames": on,
                        "offsets": on, "velocity": on * 0.6, "sustain": torch.rand(16, 1, generator=data)})
    losses = {}
    for path in ("fast", "reference"):
        torch.manual_seed(0)
        net = spec.build()
        model = net if path == "fast" else Reference(net)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        torch.manual_seed(3)
        losses[path] = []
        for batch in batches:
            loss = task.loss(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses[path].append(loss.item())
    fast, ref = torch.tensor(losses["fast"]), torch.tensor(losses["reference"])
    assert torch.allclose(fast, ref, rtol=1e-4), (fast - ref).abs().max()
    assert (ref[1:] != ref[0]).any()  # it did train (the losses move)


@pytest.mark.parametrize("noise", ["table", "generator"])
def test_elu_noise_draws_what_the_noise_layers_draw(noise):
    torch.manual_seed(0)
    c = torch.randn(3, 4, 5, 7)
    bins_major = c.transpose(2, 3).contiguous().transpose(2, 3)  # same values, frames and bins swapped in memory
    layers = torch.nn.Sequential(torch.nn.ELU(), P.GaussianDropout(0.2, noise), P.GaussianNoise(0.3, noise))
    for inp in (c, bins_major):
        torch.manual_seed(9)
        expected = layers(c)
        torch.manual_seed(9)
        got = P.elu_noise(inp, math.sqrt(0.2 / 0.8), 0.3, training=True, noise=noise)
        assert torch.allclose(got, expected, atol=1e-6)
        assert got.stride() == inp.stride()  # stays in the input's memory order
        torch.manual_seed(10)
        assert not torch.allclose(P.elu_noise(inp, math.sqrt(0.2 / 0.8), 0.3, True, noise), expected, atol=0.1)
    assert torch.equal(P.elu_noise(c, 0.5, 0.3, training=False), torch.nn.functional.elu(c))


@pytest.mark.parametrize("mode", ["full", "detached"])
def test_cross_stitch_unit_fast_path_matches_the_formula(mode):
    torch.manual_seed(0)
    unit = CS.CrossStitchUnit(5, 3, mode, "imbalanced")
    with torch.no_grad():
        unit.alpha.add_(0.05 * torch.randn(5, 5))
    z = torch.randn(4, 15, 6, 7)
    for inp in (z, z.transpose(2, 3).contiguous().transpose(2, 3)):
        grads = []
        for path in (unit, unit.reference):
            x = inp.clone().requires_grad_()
            unit.alpha.grad = None
            out = path(x)
            (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
            grads.append((out.detach(), x.grad, unit.alpha.grad.clone()))
        (o1, gx1, ga1), (o2, gx2, ga2) = grads
        assert torch.allclose(o1, o2, atol=1e-6) and torch.allclose(gx1, gx2, atol=1e-6)
        assert torch.allclose(ga1, ga2, atol=1e-5)


@pytest.mark.parametrize("b, c_in, c_out, groups, frames, bins, taps", [
    (6, 16, 16, 1, 7, 140, 35),  # the stem's 1×35 block
    (5, 40, 40, 5, 7, 140, 35),  # a cross-stitch stem: five grouped columns
    (3, 8, 12, 2, 5, 37, 16),  # uneven sizes, the shortest kernel that takes the FFT
    (2, 4, 4, 1, 3, 20, 3),  # a short kernel: oneDNN's own
])
def test_conv2d_through_the_fft_is_the_convolution(b, c_in, c_out, groups, frames, bins, taps):
    torch.manual_seed(0)
    x = torch.randn(b, c_in, frames, bins, dtype=torch.float64, requires_grad=True)
    w = torch.randn(c_out, c_in // groups, 1, taps, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(c_out, dtype=torch.float64, requires_grad=True)
    want = torch.nn.functional.conv2d(x, w, bias, groups=groups)
    got = P.conv2d(x, w, bias, groups=groups)
    assert got.shape == want.shape and got.is_contiguous()
    assert torch.allclose(got, want, atol=1e-10)
    g = torch.randn_like(want)
    for a, e in zip(torch.autograd.grad(got, (x, w, bias), g), torch.autograd.grad(want, (x, w, bias), g)):
        assert a.shape == e.shape and torch.allclose(a, e, atol=1e-10)
    assert torch.allclose(P.conv2d(x, w, None, groups=groups), want - bias.view(1, -1, 1, 1), atol=1e-10)


def test_fast_fft_sizes_are_small_multiples_of_2_and_3():
    assert [P.fast_fft_size(n) for n in (1, 2, 5, 17, 140, 142, 145)] == [1, 2, 6, 18, 144, 144, 162]
