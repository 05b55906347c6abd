"""The stages of the shared training loop, one by one: resume state, set-up, an epoch, its log row and files."""

from __future__ import annotations

import csv
import math
import random
from contextlib import nullcontext
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from mtlnb.core import training
from mtlnb.core.training import ShuffledBatchSampler, TrainConfig, snapshot_path

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def items(n: int, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return [{"id": f"s{i}", "x": x[i], "y": x[i, :1] * 2} for i in range(n)]


class Regression:
    """A minimal Task: MSE of a linear model; ``values`` scripts the validation metric per call."""

    metric, mode = "val_mse", "min"

    def __init__(self, values: list[float] | None = None, drop_last: bool = False):
        self.values, self.drop_last, self.calls = values, drop_last, 0

    def collate(self, batch):
        return {"ids": [b["id"] for b in batch], "x": torch.stack([b["x"] for b in batch]),
                "y": torch.stack([b["y"] for b in batch])}

    def batch_sampler(self, dataset, batch_size, seed):
        return ShuffledBatchSampler(len(dataset), batch_size, seed, drop_last=self.drop_last)

    def loss(self, model, batch):
        return nn.functional.mse_loss(model(batch["x"]), batch["y"])

    def evaluate(self, model, batches):
        self.calls += 1
        err = [float(((model(b["x"]) - b["y"]) ** 2).mean()) for b in batches]
        return {"mse": self.values[self.calls - 1] if self.values else float(np.mean(err)), "batches": len(err)}


def config(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 4, "seed": 3, "progress": False, "device": "cpu", **kw})


def one_process(rank: int = 0, world: int = 1) -> SimpleNamespace:
    """Stands in for training._Distributed where only rank and world matter."""
    return SimpleNamespace(active=False, rank=rank, world=world, main=rank == 0)


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(3, 1)


def setup(tmp_path, task=None, cfg=None, ckpt=None, ddp=None, net=None, n: int = 10) -> training._Loop:
    return training._setup(net or model(), task or Regression(), items(n), items(6, 1), ckpt, cfg or config(),
                           torch.device("cpu"), ddp or training._Distributed(torch.device("cpu")), tmp_path)


# -- checks and resume state


def test_check_inputs_refuses_a_bad_mode_and_empty_data():
    task = Regression()
    training._check_inputs(task, items(2), items(1))
    task.mode = "lowest"
    with pytest.raises(ValueError, match="task.mode must be 'min' or 'max'"):
        training._check_inputs(task, items(2), items(1))
    with pytest.raises(ValueError, match=r"empty dataset \(train 2, validation 0"):
        training._check_inputs(Regression(), items(2), [])


def test_load_resumable_checks_the_settings_and_the_metric(tmp_path):
    path = tmp_path / "last.pt"
    assert training._load_resumable(path, config(), Regression()) is None
    saved = {"epoch": 1, "config": asdict(config()), "best": {"metric": "val_mse"}}
    torch.save(saved, path)
    assert training._load_resumable(path, config(epochs=5, device="cuda"), Regression())["epoch"] == 1
    with pytest.raises(ValueError, match="batch_size: checkpoint 4 vs config 8"):
        training._load_resumable(path, config(batch_size=8), Regression())
    other = Regression()
    other.metric = "val_batches"
    with pytest.raises(ValueError, match="selects by 'val_mse', the task by 'val_batches'"):
        training._load_resumable(path, config(), other)


def test_progress_of_a_fresh_run_and_of_a_checkpoint():
    fresh = training._Progress.resume(None, Regression())
    assert (fresh.start, fresh.history, fresh.best) == (0, [], {"metric": "val_mse", "mode": "min", "value": None,
                                                                "epoch": 0})
    result = fresh.result("run", Regression())
    assert math.isnan(result.best_value) and (result.best_epoch, result.epochs_done, result.resumed_from) == (0, 0, 0)

    ckpt = {"epoch": 2, "history": [{"epoch": 1}, {"epoch": 2}], "best": {"metric": "val_mse", "value": 1.5,
                                                                          "epoch": 1}}
    resumed = training._Progress.resume(ckpt, Regression())
    resumed.history.append({"epoch": 3})
    resumed.best["value"] = 0.0
    assert len(ckpt["history"]) == 2 and ckpt["best"]["value"] == 1.5  # copies, not the checkpoint's own objects
    assert resumed.result("run", Regression()).resumed_from == 2


@pytest.mark.parametrize("mode, values, improved, best", [
    ("min", [5.0, 3.0, 3.0, float("nan"), 4.0, 2.0], [True, True, False, False, False, True], (2.0, 6)),
    ("max", [float("nan"), 1.0, 2.0, 2.0, 0.5], [False, True, True, False, False], (2.0, 3)),
])
def test_progress_records_rows_and_keeps_the_first_strict_best(mode, values, improved, best):
    task = Regression()
    task.mode = mode
    progress = training._Progress.resume(None, task)
    got = [progress.record({"epoch": e + 1, "val_mse": v}, "val_mse", mode) for e, v in enumerate(values)]
    assert got == improved
    assert (progress.best["value"], progress.best["epoch"]) == best
    assert [r["epoch"] for r in progress.history] == list(range(1, len(values) + 1))
    assert (progress.result("run", task).best_value, progress.result("run", task).best_epoch) == best


# -- set-up


def test_precision_is_off_on_the_cpu_even_when_asked_for():
    scaler, autocast = training._precision(config(amp=True, amp_dtype="float16"), torch.device("cpu"))
    assert not scaler.is_enabled() and autocast is nullcontext


def test_restore_or_seed_seeds_a_fresh_run_with_seed_plus_rank(tmp_path):
    opt = torch.optim.Adam(model().parameters())
    scaler, _ = training._precision(config(), torch.device("cpu"))
    training._restore_or_seed(None, opt, scaler, config(seed=11), one_process(rank=2, world=4), tmp_path / "last.pt")
    drawn = (torch.rand(3), np.random.rand(), random.random())
    training._seed_all(13)
    assert torch.equal(drawn[0], torch.rand(3)) and drawn[1] == np.random.rand() and drawn[2] == random.random()


def test_restore_or_seed_resumes_optimizer_and_random_states(tmp_path):
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    net(torch.ones(2, 3)).sum().backward()
    opt.step()
    torch.manual_seed(5)
    states = [training._rng_state(), training._rng_state()]
    expected = torch.rand(4)
    ckpt = {"epoch": 3, "optimizer": opt.state_dict(), "scaler": None, "rng": states}

    fresh_opt = torch.optim.Adam(model().parameters(), lr=0.1)
    scaler, _ = training._precision(config(), torch.device("cpu"))
    torch.manual_seed(99)
    training._restore_or_seed(ckpt, fresh_opt, scaler, config(), one_process(rank=1, world=2), tmp_path / "last.pt")
    assert torch.equal(torch.rand(4), expected)
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])

    # three processes resume what two saved: re-seeded from (seed, finished epochs, rank), with a warning
    with pytest.warns(UserWarning, match="saved by 2 processes, resumed by 3"):
        training._restore_or_seed(ckpt, fresh_opt, scaler, config(seed=3), one_process(rank=2, world=3),
                                  tmp_path / "last.pt")
    drawn = torch.rand(4)
    training._seed_all(3 + 1000 * 3 + 2)
    assert torch.equal(drawn, torch.rand(4))


def test_loader_seed_is_fixed_by_seed_epoch_and_rank():
    seeds = {(s, e, r): training._loader_seed(s, e, r) for s in (0, 1) for e in (0, 1) for r in (0, 1)}
    assert len(set(seeds.values())) == 8 and all(0 <= v < 2**32 for v in seeds.values())
    assert training._loader_seed(1, 1, 0) == seeds[(1, 1, 0)]


def test_setup_trains_only_what_requires_grad_and_shares_batches_by_rank(tmp_path):
    net = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    net[0].requires_grad_(False)
    loop = setup(tmp_path, net=net, ddp=one_process(rank=1, world=2), n=16)
    assert [id(p) for p in loop.params] == [id(p) for p in net[1].parameters()]
    assert loop.net is net and loop.val_loader is None and not loop.bars  # validation runs on rank 0 only
    assert isinstance(loop.optimizer, torch.optim.Adam) and len(loop.train_batches) == 2  # batches 1 and 3 of 4
    with pytest.raises(ValueError, match="no parameter with requires_grad"):
        setup(tmp_path, net=nn.Linear(3, 1).requires_grad_(False))
    with pytest.raises(ValueError, match=r"no training batch per process \(3 samples, batch 4"):
        setup(tmp_path, task=Regression(drop_last=True), n=3)


def test_setup_of_a_resumed_run_loads_the_checkpoint_weights(tmp_path):
    saved = nn.Linear(3, 1)
    ckpt = {"epoch": 1, "model": saved.state_dict(), "optimizer": torch.optim.Adam(saved.parameters()).state_dict(),
            "scaler": None, "rng": [training._rng_state()]}
    loop = setup(tmp_path, ckpt=ckpt)
    assert all(torch.equal(a, b) for a, b in zip(loop.model.state_dict().values(), saved.state_dict().values()))


# -- one epoch: its row, its files, its line


def test_log_row_keeps_the_file_column_order():
    row = training._log_row(3, 0.5, {"val_mse": 0.25, "val_n": 6.0}, 1.5, 0.001)
    assert list(row) == ["epoch", "train_loss", "val_mse", "val_n", "seconds", "lr"]
    assert list(row.values()) == [3, 0.5, 0.25, 6.0, 1.5, 0.001]


def test_weights_checkpoint_of_best_and_of_a_snapshot():
    best = training._weights_checkpoint(2, "val_mse", 0.5, {"w": torch.ones(1)}, config())
    assert list(best) == ["format", "epoch", "metric", "value", "model", "config"]
    assert best["config"] == asdict(config()) and best["format"] == training.CHECKPOINT_FORMAT
    snap = training._weights_checkpoint(2, "val_mse", 0.5, {}, config(), target=1)
    assert list(snap) == ["format", "epoch", "metric", "value", "target", "model", "config"]
    assert isinstance(snap["target"], float)


def test_save_epoch_writes_best_only_on_improvement_and_each_snapshot_once(tmp_path):
    task = Regression()
    loop = setup(tmp_path, task=task, cfg=config(snapshots_at=(4.0, 1.0)))
    progress = training._Progress.resume(None, task)
    for epoch, value in enumerate([5.0, 3.0, 6.0], start=1):
        row = training._log_row(epoch, 1.0, {"val_mse": value}, 0.1, 0.001)
        improved = progress.record(row, task.metric, task.mode)
        with torch.no_grad():
            loop.model.weight.fill_(float(epoch))  # the weights saved in this epoch's files
        training._save_epoch(loop, progress, row, improved, rng=[{"marker": epoch}])
        last = torch.load(tmp_path / "last.pt", weights_only=True)
        assert last["epoch"] == epoch and last["rng"] == [{"marker": epoch}] and last["scaler"] is None
        assert last["best"] == progress.best and last["history"] == progress.history
        assert float(last["model"]["weight"][0, 0]) == epoch
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert (best["epoch"], best["value"], float(best["model"]["weight"][0, 0])) == (2, 3.0, 2.0)
    snap = torch.load(snapshot_path(tmp_path, 4.0), weights_only=True)
    assert (snap["epoch"], snap["value"], snap["target"]) == (2, 3.0, 4.0)
    assert not snapshot_path(tmp_path, 1.0).exists()
    with open(tmp_path / "log.csv", newline="") as f:
        assert [r["val_mse"] for r in csv.DictReader(f)] == ["5.0", "3.0", "6.0"]


def test_epoch_line_marks_a_new_best():
    row = {"epoch": 2, "train_loss": 0.123456, "val_mse": 2.0, "seconds": 1.0, "lr": 0.001}
    assert training._epoch_line(row, 5, True) == "epoch 2/5: train_loss 0.1235, val_mse 2, seconds 1, lr 0.001 *"
    assert training._epoch_line(row, 5, False).endswith("lr 0.001")


def test_run_epoch_trains_validates_and_checkpoints(tmp_path):
    task = Regression(values=[2.0])
    loop = setup(tmp_path, task=task, n=10)
    before = loop.model.weight.detach().clone()
    progress = training._Progress.resume(None, task)
    training._run_epoch(loop, progress, 0)
    assert not torch.equal(before, loop.model.weight.detach())
    row = progress.history[0]
    assert (row["epoch"], row["val_mse"], row["val_batches"], progress.best["epoch"]) == (1, 2.0, 2.0, 1)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1 and (tmp_path / "best.pt").exists()


def test_run_epoch_refuses_a_task_without_its_metric(tmp_path):
    task = Regression()
    task.metric = "val_accuracy"
    loop = setup(tmp_path, task=task)
    with pytest.raises(ValueError, match="'val_accuracy' is not among the validation metrics"):
        training._run_epoch(loop, training._Progress.resume(None, task), 0)
    assert not (tmp_path / "last.pt").exists()
