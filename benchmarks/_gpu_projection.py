"""GPU peaks and the projection rule shared by the training benchmarks (``bench_training``, ``bench_piano_training``).

Both benchmarks project GPU time from *counted* FLOPs, not from a measurement: a pass takes its FLOPs divided by
an assumed share (``utilisation``) of the GPU's peak, but never less than an assumed floor (kernel launches, the
Python loop, sequential recurrent steps), which is what bounds small batches on a fast GPU.  The peaks are the
vendors' datasheet figures; no GPU was measured here.

The rule and the peaks are defined once, in :mod:`mtlnb.camera_primus.networks.budget`, which also projects the
paper profile from a dry run's measured step times; this module re-exports them for the benchmarks.
"""

from __future__ import annotations

from mtlnb.camera_primus.networks.budget import (  # noqa: F401  (re-exported)
    H100_SXM_BF16_DENSE,
    H100_SXM_FP32,
    TESLA_K40_FP32,
    gpu_seconds,
)
