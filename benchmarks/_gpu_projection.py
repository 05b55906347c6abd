"""GPU peaks and the projection rule shared by the training benchmarks (``bench_training``, ``bench_piano_training``).

Both benchmarks project GPU time from *counted* FLOPs, not from a measurement: a pass takes its FLOPs divided by
an assumed share (``utilisation``) of the GPU's peak, but never less than an assumed floor (kernel launches, the
Python loop, sequential recurrent steps), which is what bounds small batches on a fast GPU.  The peaks are the
vendors' datasheet figures; no GPU was measured here.
"""

from __future__ import annotations

# Datasheet peaks in FLOP/s (2 FLOPs per multiply-add), boost clock.
TESLA_K40_FP32 = 4.29e12  # the piano paper's GPU
H100_SXM_FP32 = 67e12  # H100 SXM5 without tensor cores: what a pure-FP32 training loop gets
# H100 SXM5 dense BF16 on tensor cores: the CTC training path on CUDA (bf16 autocast, mtlnb.core.training).  The
# datasheet's 1,979 TFLOPS assumes 2:4 structured sparsity, which nothing here uses.  (H100 PCIe: 756 / 51.)
H100_SXM_BF16_DENSE = 989.4e12


def gpu_seconds(flops: float, peak: float, utilisation: float, floor_s: float = 0.0) -> float:
    """Projected seconds of one pass: ``max(flops / (peak · utilisation), floor_s)``.

    Parameters
    ----------
    flops : float
        Work of the pass (FLOPs, counted).
    peak : float
        The GPU's peak (FLOP/s) for the arithmetic the pass uses.
    utilisation : float
        Assumed share of ``peak`` the pass sustains, in (0, 1].
    floor_s : float
        Assumed minimum duration of the pass (s), whatever its FLOPs.

    Returns
    -------
    float
        Seconds.
    """
    if not 0 < utilisation <= 1:
        raise ValueError(f"gpu_seconds: utilisation must be in (0, 1], got {utilisation}")
    if peak <= 0 or flops < 0 or floor_s < 0:
        raise ValueError(f"gpu_seconds: need peak > 0, flops >= 0, floor_s >= 0; got {peak}, {flops}, {floor_s}")
    return max(flops / (peak * utilisation), floor_s)
