"""Cross-stitch networks for the piano study (Misra et al. 2016; Kelz, Böck & Widmer 2019, §IV and Fig. 4).

Five task columns, each the hard-sharing stem (at 48 maps: :data:`CROSS_STITCH`) and its task's head, built from
the blocks of :mod:`mtlnb.piano.networks`; after every stem block a cross-stitch unit feeds column m the
combination ``z̃_m = Σ_j α_mj z_j`` of all columns' block outputs.  Input and outputs as the hard-sharing net:
``x`` (B, 11, 144) → dict task → (B, 88) or (B, 1).

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
  Glorot fans of the grouped convolutions are those of one column's convolution.
- Fast path and reference (as :mod:`mtlnb.piano.networks`): ``forward`` uses the networks' fast blocks and, for
  one α per task pair, one autograd node per unit (:class:`_TaskStitch`: a batched 5×5 matrix product forward,
  two backward); :meth:`CrossStitchNet.reference` and :meth:`CrossStitchUnit.reference` run the plain modules and
  the ``einsum`` of the formula above, the definition the tests compare against.  Per-channel α always take the
  ``einsum``.

Parameter counts (five heads; :func:`mtlnb.piano.networks.count_parameters`): hard sharing 863,557; cross-stitch
at 48 maps 956,825 (+10.8 %: the paper's "roughly comparable"; with α per channel 961,525).  :func:`matched_maps`
finds the cross-stitch width closest to a given count: 44 maps, 864,605 parameters, for the hard net's 863,557.
"""

from __future__ import annotations

import torch
from torch import nn

from mtlnb.piano import networks

MODES = ("full", "detached")  # gradients through every term, or not across columns (the paper's variant)
INITS = ("balanced", "imbalanced")  # α = 1/M, or 0.9 on the diagonal and 0.1 elsewhere
ALPHAS = ("task", "channel")  # one α per task pair, or per task pair and channel
CROSS_STITCH = networks.HARD_SHARING.with_maps(48)  # one cross-stitch column: "reduced from 96 to 48" (§IV)


class _TaskStitch(torch.autograd.Function):
    """``out[b] = α @ z[b]`` for ``z`` (B, M, K), α (M, M): one cross-stitch unit with one α per task pair.

    Backward: ``∂L/∂α = Σ_b g[b] @ z[b]ᵀ`` in both modes; ``∂L/∂z[b] = αᵀ @ g[b]`` (full) or ``diag(α) · g[b]``
    (detached: only the own column's term passes a gradient, as ``z_j.detach()`` for j ≠ m in the formula).
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, alpha: torch.Tensor, detached: bool) -> torch.Tensor:
        ctx.save_for_backward(z, alpha)
        ctx.detached = detached
        return torch.matmul(alpha.to(z.dtype).expand(z.shape[0], -1, -1), z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        z, alpha = ctx.saved_tensors
        a = alpha.to(z.dtype)
        grad_z = grad_alpha = None
        if ctx.needs_input_grad[0]:
            if ctx.detached:
                grad_z = grad * torch.diagonal(a)[None, :, None]
            else:
                grad_z = torch.matmul(a.t().expand(z.shape[0], -1, -1), grad)
        if ctx.needs_input_grad[1]:
            grad_alpha = torch.bmm(grad, z.transpose(1, 2)).sum(0).to(alpha.dtype)
        return grad_z, grad_alpha, None


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
        """``z`` (B, M·C, H, W) in any memory order → the stitched maps, same shape, contiguous."""
        b, mc, h, w = z.shape
        m, c = self.n_tasks, self.channels
        if mc != m * c:
            raise ValueError(f"CrossStitchUnit: expected {m}·{c} = {m * c} channels, got {mc}")
        if self.granularity == "channel":
            return self.reference(z)
        # The unit mixes whole columns: each column's C·H·W values as one block (the fast path's maps are contiguous)
        out = _TaskStitch.apply(z.contiguous().reshape(b, m, c * h * w), self.alpha, self.mode == "detached")
        return out.view(b, mc, h, w)

    def reference(self, z: torch.Tensor) -> torch.Tensor:
        """The formula as an ``einsum`` over the (B, M, C, H, W) view (the definition the fast path is tested
        against)."""
        b, mc, h, w = z.shape
        m, c = self.n_tasks, self.channels
        if mc != m * c:
            raise ValueError(f"CrossStitchUnit: expected {m}·{c} = {m * c} channels, got {mc}")
        zs = z.reshape(b, m, c, h, w)
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


class CrossStitchNet(networks.PianoNet):
    """One stem column per task, a cross-stitch unit after every stem block, each column's own head (Fig. 4).

    Parameters
    ----------
    config : mtlnb.piano.networks.PianoNetConfig
        One column's sizes; default :data:`CROSS_STITCH` (48 maps).  ``config.tasks`` are the columns.
    mode : {"full", "detached"}
    init : {"balanced", "imbalanced"}
    alpha : {"task", "channel"}
        See :class:`CrossStitchUnit`.

    Forward: ``x`` (B, 11, 144) → dict task → (B, 88) or (B, 1), as :class:`mtlnb.piano.networks.HardSharingNet`.
    """

    def __init__(self, config: networks.PianoNetConfig = CROSS_STITCH, mode: str = "full", init: str = "balanced",
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
            blocks.append(networks.conv_block(c_in * (1 if i == 0 else m), maps * m, kt, kf, config.stem_dropout,
                                              config.stem_noise, columns=m, groups=groups, noise=config.noise))
            units.append(CrossStitchUnit(m, maps, mode, init, alpha))
            c_in = maps
        self.blocks, self.units = nn.ModuleList(blocks), nn.ModuleList(units)
        self.heads = nn.ModuleDict({t: networks.TaskHead(config, t, c_in) for t in config.tasks})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = networks.normalised_input(self.input_norm, networks.as_input(x, self.config))
        for i, (block, unit) in enumerate(zip(self.blocks, self.units)):
            conv, std, sigma, noise = networks.block_parts(block)
            weight, bias = networks.first_conv_params(self.input_norm, conv) if i == 0 else (conv.weight, conv.bias)
            c = networks.conv2d(z, weight, bias, groups=conv.groups)
            z = unit(networks.elu_noise(c, std, sigma, self.training, noise))
        return networks.heads_forward(self.heads, z, self.training, groups=len(self.config.tasks))

    def reference(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.input_norm(networks.as_input(x, self.config))
        for block, unit in zip(self.blocks, self.units):
            z = unit.reference(block(z))
        columns = z.chunk(len(self.config.tasks), dim=1)
        return {t: head(columns[i]) for i, (t, head) in enumerate(self.heads.items())}


def matched_maps(target: int, config: networks.PianoNetConfig = CROSS_STITCH, mode: str = "full",
                 alpha: str = "task") -> tuple[int, int]:
    """The cross-stitch stem width whose parameter count is closest to ``target``.

    Returns
    -------
    (maps, parameters)
    """
    best = None
    for maps in range(1, max(c for c, _, _ in config.stem) * 2 + 1):
        n = networks.count_parameters(CrossStitchNet(config.with_maps(maps), mode, "balanced", alpha))
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (maps, n)
        if n > target:
            break
    return best
