"""The counting and the projection arithmetic of benchmarks/bench_training.py (hand-computed; no timing)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _gpu_projection  # noqa: E402  (benchmarks/ is not a package)
import bench_training as B  # noqa: E402

from mtlnb.camera_primus.networks import ctc_tasks  # noqa: E402
from mtlnb.camera_primus.corpus.datasets import Vocabulary  # noqa: E402
from mtlnb.camera_primus.networks import crnn  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_lstm_forward_flops_by_hand():
    lstm = torch.nn.LSTM(3, 2, num_layers=2, bidirectional=True, batch_first=True)
    # layer 0: 2·4·(3+2)·2 per step and direction = 80; × 7 steps × 5 samples × 2 directions = 5,600
    # layer 1 reads both directions (4 inputs): 2·4·(4+2)·2 = 96 → 6,720
    assert B.lstm_forward_flops(lstm, batch=5, steps=7) == 5600 + 6720


def test_count_flops_tiny_crnn_by_hand():
    # One 3×3 conv block (1 → 2 channels, pool 2×2) on 4×8 inputs, two BiLSTMs of 2 units, 3 symbols + blank.
    cfg = crnn.CRNNConfig(vocab_size=3, input_height=4, filters=(2,), kernels=((3, 3),), pools=((2, 2),),
                          lstm_units=2)
    torch.manual_seed(0)
    model = crnn.CRNN(cfg)
    task = ctc_tasks.omr_task(Vocabulary(("a", "b", "c")))
    data = {"ids": ["x", "y"], "tokens": [["a", "b"]] * 2, "image": torch.rand(2, 1, 4, 8),
            "image_widths": torch.tensor([8, 8]), "labels": torch.tensor([[0, 1], [0, 1]]),
            "label_lengths": torch.tensor([2, 2])}
    got = B.count_flops(model, task, data, batch=2)
    conv = 2 * 9 * 1 * 2 * 4 * 8  # per output position: 9 taps × 1 input channel, 2 channels, 4×8 positions
    # after the pool: 4 frames of 2 rows × 2 channels = 4 features; each BiLSTM: 2·4·(4+2)·2 × 4 frames × 2 dirs
    lstm = 2 * (2 * 4 * (4 + 2) * 2 * 4 * 2)
    out = 2 * 4 * 4 * 4  # Linear(4 → 4) on 4 frames
    assert not got["lstm_in_counter"]  # torch 2.13 does not count LSTMs: the analytic part is needed
    assert got["frames"] == 4
    assert got["lstm_steps"] == 2 * 4  # two stacked BiLSTMs, 4 steps each
    assert got["lstm_fwd_flops"] == lstm
    assert got["fwd_flops"] == conv + lstm + out
    # backward: conv1 needs only its weight gradient (its input is data), the Linear both; LSTM ×3 analytic
    assert got["train_flops"] == 2 * conv + 3 * out + 3 * lstm


def test_paper_work_by_hand():
    work = {w.label: w for w in B.paper_work({"omr": 16, "a2s": 4, "gradspsa": 2}, {"omr": 16, "a2s": 4,
                                                                                      "gradspsa": 2})}
    runs = 5 * 150
    full = work["OMR training, full fold"]
    assert (full.samples, full.passes) == (runs * 13371, runs * 836)  # ceil(13,371 / 16) = 836
    # int(13,371 · p / 100) for p = 2.5, 2.2, 2.0, 4.0, 3.7, 3.0, 10.5, 9.0, 6.3
    subsets = [334, 294, 267, 534, 494, 401, 1403, 1203, 842]
    scen = work["OMR training, 9 scenarios"]
    assert scen.samples == runs * sum(subsets)
    assert scen.passes == runs * sum(-(-n // 16) for n in subsets)
    assert work["OMR validation, 10 trainings"].passes == runs * 10 * 279  # ceil(4,457 / 16)
    assert work["GradSPSA training"].passes == runs * 4012  # the 60 % subset: ceil(8,023 / 2)
    assert work["GradSPSA validation"].samples == runs * 2674
    full = {w.label: w for w in B.paper_work({"omr": 16, "a2s": 4, "gradspsa": 2}, {"omr": 16, "a2s": 4,
                                                                                     "gradspsa": 2}, 1.0)}
    assert full["GradSPSA training"].passes == runs * 6686  # the full folds: ceil(13,371 / 2)
    post = work["OMR posteriors (val + test, 1 per call)"]
    assert post.samples == post.passes == 5 * 10 * (4457 + 4457)


def test_flop_hours_takes_the_larger_of_compute_and_floor():
    result = {"train_flops": 1e12, "fwd_flops": 1e11, "lstm_steps": 100}
    work = [B.Work("t", "n", True, samples=20, passes=10), B.Work("v", "n", False, samples=20, passes=10)]
    hours = B.flop_hours(work, {"n": result}, peak=10e12, utilisation=0.5, floor_ms=1.0, eval_floor_ms=0.0,
                         step_us=10.0)
    # update: 2e12 FLOPs / 5e12 FLOP/s = 0.4 s > floor 1 ms + 2·100·10 µs = 3 ms
    assert hours["t"] == pytest.approx(10 * 0.4 / 3600)
    # forward: 2e11 / 5e12 = 0.04 s > 100 · 10 µs = 1 ms
    assert hours["v"] == pytest.approx(10 * 0.04 / 3600)
    slow_floor = B.flop_hours(work, {"n": result}, peak=10e12, utilisation=0.5, floor_ms=1000.0,
                              eval_floor_ms=0.0, step_us=10.0)
    assert slow_floor["t"] == pytest.approx(10 * (1.0 + 0.002) / 3600)


def test_utilisation_for_goal():
    assert B.utilisation_for(2.0, lambda u: 1.0 / u) == pytest.approx(0.5)
    assert B.utilisation_for(2.0, lambda u: 3.0 + 1.0 / u) is None  # a floor of 3 h above the goal


def test_gpu_seconds_rejects_bad_utilisation():
    assert _gpu_projection.gpu_seconds(4e12, 1e12, 0.5, floor_s=1.0) == 8.0
    assert _gpu_projection.gpu_seconds(4e12, 1e12, 0.5, floor_s=9.0) == 9.0
    with pytest.raises(ValueError, match="utilisation"):
        _gpu_projection.gpu_seconds(1.0, 1.0, 0.0)
