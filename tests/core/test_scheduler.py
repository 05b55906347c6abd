"""Several independent trainings at once: dependency order, failures, and the same results as one at a time."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlnb.core import scheduler
from mtlnb.core.scheduler import Job, run_jobs
from mtlnb.core.training import ShuffledBatchSampler, TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class RegressionTask:
    """MSE regression of a fixed linear target (picklable: module level, plain attributes)."""

    metric = "val_mse"
    mode = "min"

    def collate(self, items):
        return {"ids": [i for i, _, _ in items], "x": torch.stack([x for _, x, _ in items]),
                "y": torch.stack([y for _, _, y in items])}

    def batch_sampler(self, dataset, batch_size, seed):
        return ShuffledBatchSampler(len(dataset), batch_size, seed)

    def loss(self, model, batch):
        return nn.functional.mse_loss(model(batch["x"]), batch["y"])

    def evaluate(self, model, batches):
        errors = [nn.functional.mse_loss(model(b["x"]), b["y"], reduction="sum").item() for b in batches]
        return {"mse": sum(errors)}


def train_tiny(run_dir: str, seed: int) -> dict:
    """One small training with dropout and shuffled batches (what concurrency could disturb); returns its final
    weights and log rows (seconds dropped)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 6, generator=g)
    y = x @ torch.randn(6, 1, generator=g)
    data = [(f"s{i}", x[i], y[i]) for i in range(40)]
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 1))
    config = TrainConfig(epochs=3, batch_size=4, seed=seed, device="cpu", progress=False, restore_best=False)
    result = train(model, RegressionTask(), data[:32], data[32:], run_dir, config)
    rows = [{k: v for k, v in row.items() if k != "seconds"} for row in result.history]
    return {"state": {k: v.clone() for k, v in model.state_dict().items()}, "log": rows}


def fail(message: str) -> None:
    raise ValueError(message)


def record(log: list, key: str) -> str:
    log.append(key)
    return key


def test_two_concurrent_trainings_equal_two_sequential_ones(tmp_path):
    jobs = [Job(f"run{s}", train_tiny, (str(tmp_path / f"{mode}{s}"), s)) for mode in ("p",) for s in (1, 2)]
    concurrent = run_jobs(jobs, concurrency=2, device="cpu", threads=1)
    sequential = {f"run{s}": train_tiny(str(tmp_path / f"s{s}"), s) for s in (1, 2)}
    for key in ("run1", "run2"):
        assert concurrent[key]["log"] == sequential[key]["log"]
        for name, value in sequential[key]["state"].items():
            assert torch.equal(concurrent[key]["state"][name], value), (key, name)
    assert not torch.equal(concurrent["run1"]["state"]["0.weight"], concurrent["run2"]["state"]["0.weight"])


def test_one_at_a_time_runs_in_process_dependencies_first():
    log: list[str] = []  # shared with the jobs: only possible in this process
    jobs = [Job("b", record, (log, "b"), after=("a",)), Job("c", record, (log, "c")), Job("a", record, (log, "a"))]
    assert run_jobs(jobs, concurrency=1) == {"a": "a", "b": "b", "c": "c"}
    assert log == ["a", "b", "c"]  # b waits for a; otherwise the order given


def test_bad_job_lists_are_refused():
    with pytest.raises(ValueError, match="listed twice"):
        run_jobs([Job("a", print), Job("a", print)])
    with pytest.raises(ValueError, match="waits for \\['z'\\]"):
        run_jobs([Job("a", print, after=("z",))])
    with pytest.raises(ValueError, match="cycle"):
        run_jobs([Job("a", print, after=("b",)), Job("b", print, after=("a",))])
    with pytest.raises(ValueError, match="concurrency"):
        run_jobs([Job("a", print)], concurrency=0)


def test_a_failing_worker_raises_its_own_error_and_stops_its_dependents(tmp_path):
    jobs = [Job("bad", fail, ("no such sample s7",)),
            Job("after-bad", train_tiny, (str(tmp_path / "x"), 1), after=("bad",))]
    with pytest.raises(ValueError, match="no such sample s7") as info:
        run_jobs(jobs, concurrency=2, device="cpu", threads=1)
    assert any("'bad'" in note for note in getattr(info.value, "__notes__", []))
    assert not (tmp_path / "x").exists()  # the dependent never started


def test_cores_are_shared_out_between_workers(monkeypatch):
    assert scheduler.worker_threads(2, cores=16) == 8
    assert scheduler.worker_threads(4, cores=2) == 1
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", "/nonexistent-mtlnb-mps")
    assert not scheduler.mps_running()
