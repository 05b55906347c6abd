"""The dry run's memory estimate and the projection of the paper profile's cost (counted by hand; no timing)."""

from __future__ import annotations

import pytest
import torch

from mtlnb.camera_primus.corpus.datasets import Vocabulary
from mtlnb.camera_primus.networks import budget, crnn, ctc_tasks
from mtlnb.profiles import get_profile

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_fold_sizes_of_the_cleansed_corpus():
    assert budget.fold_sizes(22285) == (13371, 4457, 4457)


def test_paper_work_by_hand():
    work = {w.label.split(" (")[0]: w for w in budget.paper_work(get_profile("paper"))}
    runs = 5 * 150
    assert work["OMR updates, full fold"].passes == runs * 836  # ceil(13,371 / 16)
    # int(13,371 · p / 100) for p = 2.5, 2.2, 2.0, 4.0, 3.7, 3.0, 10.5, 9.0, 6.3
    subsets = [334, 294, 267, 534, 494, 401, 1403, 1203, 842]
    assert work["OMR updates, 9 scenarios"].passes == runs * sum(-(-n // 16) for n in subsets)
    assert work["OMR validation, 10 trainings"].passes == runs * 10 * 279  # ceil(4,457 / 16)
    assert work["A2S updates"].passes == runs * 3343  # ceil(13,371 / 4)
    # GradSPSA on the 60 % subset: round(0.6 · 13,371) = 8,023 pairs, 2,674 validation (thesis Table 1)
    assert work["GradSPSA updates"].passes == runs * 4012  # ceil(8,023 / 2)
    assert work["GradSPSA validation"].passes == runs * 1337
    assert work["GradSPSA posteriors"].passes == 5 * (4457 + 4457)  # the full folds, for fusion
    assert work["OMR posteriors, 10 trainings"].passes == 5 * 10 * (4457 + 4457)
    assert sum(w.trainings for w in work.values()) == 60  # 5 folds × 12 networks


def test_projection_takes_the_larger_of_arithmetic_and_floor_and_overlaps_latency():
    work = [budget.Work("u", "n", "update", 1000, 1), budget.Work("v", "n", "validation", 100, 0)]
    seconds = {"n": {"update": 1.0, "validation": 0.01}}
    hours = budget.projection(work, seconds, {"n": 100}, speedup=100.0, concurrency=1)
    assert hours["cpu"] == pytest.approx((1000 * 1.0 + 100 * 0.01) / 3600)
    # update: 1 s / 100 = 10 ms > floor 2 ms + 2 · 100 · 5 µs = 3 ms; validation: 0.1 ms < 0.5 ms + 0.5 ms
    assert hours["gpu"] == pytest.approx((1000 * 0.010 + 100 * 0.001) / 3600)
    assert hours["arithmetic"] == pytest.approx((1000 * 0.010 + 100 * 0.0001) / 3600)
    four = budget.projection(work, seconds, {"n": 100}, speedup=100.0, concurrency=4)
    assert four["wall"] == pytest.approx(max(hours["gpu"] / 4, hours["arithmetic"]))
    with pytest.raises(ValueError, match="no measured validation time of n"):
        budget.projection(work, {"n": {"update": 1.0}}, {"n": 1}, 10.0)


def test_measured_seconds_are_medians_per_network_at_the_real_mean_width():
    infos = [{"network": "omr", "timing": {"train_seconds_per_step": s, "val_seconds_per_batch": 1.0}}
             for s in (1.0, 2.0, 9.0)] + [{"network": "a2s"}]
    assert budget.measured_seconds(infos) == {"omr": {"update": 2.0, "validation": 1.0}}
    # a step measured on a batch padded to twice the real mean width counts half; one of 2 samples of a batch of 4
    # twice
    wide = {"network": "a2s", "timing": {"train_seconds_per_step": 4.0, "train_width": 2 * 1247, "batch": 4,
                                         "train_samples": 2, "posterior_seconds_per_sample": 0.5,
                                         "posterior_width": 1247 / 2}}
    assert budget.measured_seconds([wide]) == {"a2s": {"update": 4.0, "posterior": 1.0}}


def test_memory_estimate_extrapolates_the_saved_activations_linearly():
    vocab = Vocabulary(tuple("abcdef"))
    cfg = crnn.CRNNConfig(vocab_size=6, input_height=16, filters=(4, 8), kernels=((3, 3), (3, 3)),
                          pools=((2, 2), (2, 1)), lstm_units=8)
    torch.manual_seed(0)
    model = crnn.CRNN(cfg)
    task = ctc_tasks.omr_task(vocab)
    check = budget.memory_check(model, task, batch=3, widths={"image": 400}, probe=64, heights={"image": 16})
    full = budget.saved_bytes(model, task, budget._batch(task, 3, {"image": 400}, 6, heights={"image": 16}))
    trainable = sum(p.numel() * 4 for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() * 4 for p in model.parameters() if not p.requires_grad)
    assert trainable > 0 and check.parameter_bytes == 4 * trainable + frozen  # weights, gradients, Adam's moments
    # the straight line through two small widths meets the direct count at 400 columns within 10 %, from above
    assert full <= check.estimate - check.parameter_bytes <= 1.1 * full
    assert check.fits() and check.max_scale() > 1e3
    small = budget.MemoryCheck(3, {"image": 400}, 10, 0.0, 100.0, device_bytes=1000)
    assert small.estimate == 110 and small.max_scale() == pytest.approx((900 - 10) / 100)
    assert small.fits() and not small.fits(concurrent=9)
    assert "fits an H100" in check.summary()


def test_the_memory_check_leaves_the_network_as_it_was():
    vocab = Vocabulary(tuple("abc"))
    cfg = crnn.CRNNConfig(vocab_size=3, input_height=16, filters=(4,), kernels=((3, 3),), pools=((2, 2),),
                          lstm_units=4)
    torch.manual_seed(0)
    model = crnn.CRNN(cfg).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    budget.memory_check(model, ctc_tasks.omr_task(vocab), batch=2, widths={"image": 100}, probe=32,
                        heights={"image": 16})
    assert not model.training and torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BatchNorm statistics too
