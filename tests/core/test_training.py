"""The shared training loop: resume, finished runs, best-epoch selection, the log, failures, DDP."""

from __future__ import annotations

import csv
import os
import socket
from pathlib import Path

import pytest
import torch
from torch import nn

from mtlnb.core import training
from mtlnb.core.training import ShuffledBatchSampler, TrainConfig, snapshot_path, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- a tiny regression problem with everything that can break a resume: dropout, BatchNorm, shuffled batches --

def toy_data(n: int = 24, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=g)
    return [{"id": f"s{i}", "x": x[i], "y": y[i : i + 1]} for i in range(n)]


def toy_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))


class ToyTask:
    """MSE regression; ``scripted`` replaces the selection metric by given values per epoch (to test selection)."""

    metric = "val_mse"
    mode = "min"

    def __init__(self, scripted: list[float] | None = None):
        self.scripted = scripted
        self.epoch = 0
        self.snapshots = []  # weights seen at each validation
        self.seen_ids = []  # ids of every training batch, in order

    def collate(self, items):
        return {"ids": [it["id"] for it in items], "x": torch.stack([it["x"] for it in items]),
                "y": torch.stack([it["y"] for it in items])}

    def batch_sampler(self, dataset, batch_size, seed):
        return ShuffledBatchSampler(len(dataset), batch_size, seed)

    def loss(self, model, batch):
        self.seen_ids.append(list(batch["ids"]))
        return nn.functional.mse_loss(model(batch["x"]), batch["y"])

    def evaluate(self, model, batches):
        self.snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        err, n = 0.0, 0
        for b in batches:
            err += float(((model(b["x"]) - b["y"]) ** 2).sum())
            n += len(b["ids"])
        self.epoch += 1
        mse = err / n if self.scripted is None else self.scripted[self.epoch - 1]
        return {"mse": mse, "n": float(n)}


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=5, seed=7, progress=False, restore_best=False, device="cpu")
    return TrainConfig(**{**base, **kw})


def read_log(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_is_bit_identical(tmp_path):
    data, val = toy_data(24, 0), toy_data(10, 1)
    train(toy_model(0), ToyTask(), data, val, tmp_path / "whole", cfg(epochs=3))
    train(toy_model(0), ToyTask(), data, val, tmp_path / "split", cfg(epochs=2))
    # a crash after the log was written but before last.pt: the stray row must go on resume
    with open(tmp_path / "split" / "log.csv", "a") as f:
        f.write("3,99.0,99.0,10.0,1.0,0.001\n")
    # a fresh model with other weights: everything must come from last.pt
    resumed = train(toy_model(123), ToyTask(), data, val, tmp_path / "split", cfg(epochs=3))
    assert resumed.resumed_from == 2 and resumed.epochs_done == 3

    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    split = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert same_state(whole["model"], split["model"])
    assert whole["optimizer"]["state"][0]["exp_avg"].equal(split["optimizer"]["state"][0]["exp_avg"])
    bw = torch.load(tmp_path / "whole" / "best.pt", weights_only=True)
    bs = torch.load(tmp_path / "split" / "best.pt", weights_only=True)
    assert bw["epoch"] == bs["epoch"] and same_state(bw["model"], bs["model"])
    log_w, log_s = read_log(tmp_path / "whole" / "log.csv"), read_log(tmp_path / "split" / "log.csv")
    assert len(log_w) == len(log_s) == 3
    for rw, rs in zip(log_w, log_s):
        rw.pop("seconds"), rs.pop("seconds")
        assert rw == rs
    # and training did something: weights moved away from the initialisation
    assert not same_state(whole["model"], toy_model(0).state_dict())


def test_finished_run_returns_without_training(tmp_path):
    data, val = toy_data(24, 0), toy_data(10, 1)
    first = train(toy_model(0), ToyTask(), data, val, tmp_path, cfg(epochs=2))
    stamp = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    task = ToyTask()
    model = toy_model(5)
    again = train(model, task, data, val, tmp_path, cfg(epochs=2, restore_best=True))
    assert task.seen_ids == [] and task.snapshots == []  # no step, no validation
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamp
    assert (again.epochs_done, again.resumed_from, again.best_epoch) == (2, 2, first.best_epoch)
    assert again.history == first.history
    # the best weights are in the model on return
    assert same_state(model.state_dict(), torch.load(tmp_path / "best.pt", weights_only=True)["model"])


def test_resume_refuses_other_settings(tmp_path):
    data, val = toy_data(24, 0), toy_data(10, 1)
    train(toy_model(0), ToyTask(), data, val, tmp_path, cfg(epochs=1))
    with pytest.raises(ValueError, match="lr: checkpoint 0.001 vs config 0.01"):
        train(toy_model(0), ToyTask(), data, val, tmp_path, cfg(epochs=2, lr=0.01))


def test_best_checkpoint_follows_the_metric(tmp_path):
    # min: 5, 3, 4, 3 -> epoch 2 (the tie in epoch 4 keeps the earlier epoch, as the baseline's strict "<")
    task = ToyTask(scripted=[5.0, 3.0, 4.0, 3.0])
    res = train(toy_model(0), task, toy_data(), toy_data(10, 1), tmp_path / "min", cfg(epochs=4))
    best = torch.load(tmp_path / "min" / "best.pt", weights_only=True)
    assert (res.best_epoch, res.best_value, best["epoch"], best["value"]) == (2, 3.0, 2, 3.0)
    assert same_state(best["model"], task.snapshots[1])
    assert not same_state(best["model"], task.snapshots[3])

    class MaxTask(ToyTask):
        metric, mode = "val_mse", "max"

    task = MaxTask(scripted=[1.0, float("nan"), 2.0, 0.5])
    res = train(toy_model(0), task, toy_data(), toy_data(10, 1), tmp_path / "max", cfg(epochs=4, restore_best=True))
    assert (res.best_epoch, res.best_value) == (3, 2.0)


def test_snapshots_keep_the_first_epoch_that_reaches_each_value(tmp_path):
    # min: 9, 6, 4, 5, 2: 7 is reached first in epoch 2, 4 in epoch 3 (not the later 2), 1 never
    task = ToyTask(scripted=[9.0, 6.0, 4.0, 5.0, 2.0])
    run = tmp_path / "run"
    train(toy_model(0), task, toy_data(), toy_data(10, 1), run, cfg(epochs=3, snapshots_at=(7.0, 4.0, 1.0)))
    snap = {v: torch.load(snapshot_path(run, v), weights_only=True) for v in (7.0, 4.0)}
    assert (snap[7.0]["epoch"], snap[7.0]["value"], snap[4.0]["epoch"], snap[4.0]["value"]) == (2, 6.0, 3, 4.0)
    assert same_state(snap[7.0]["model"], task.snapshots[1]) and same_state(snap[4.0]["model"], task.snapshots[2])
    assert not snapshot_path(run, 1.0).exists()
    # resumed for two more epochs: the files of epochs 2 and 3 stay, and 1.0 is still not reached by 2.0
    stamp = snapshot_path(run, 4.0).stat().st_mtime_ns
    task.epoch = 3
    train(toy_model(0), task, toy_data(), toy_data(10, 1), run, cfg(epochs=5, snapshots_at=(7.0, 4.0, 1.0)))
    assert snapshot_path(run, 4.0).stat().st_mtime_ns == stamp and not snapshot_path(run, 1.0).exists()
    with pytest.raises(ValueError, match="snapshots_at"):
        cfg(snapshots_at=(float("nan"),))


def test_log_columns_and_rows(tmp_path):
    res = train(toy_model(0), ToyTask(), toy_data(), toy_data(10, 1), tmp_path, cfg(epochs=2))
    with open(tmp_path / "log.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == ["epoch", "train_loss", "val_mse", "val_n", "seconds", "lr"]
    rows = read_log(tmp_path / "log.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(float(r["val_n"]) == 10 and float(r["lr"]) == 1e-3 and float(r["seconds"]) > 0 for r in rows)
    assert float(rows[0]["train_loss"]) == pytest.approx(res.history[0]["train_loss"])


def test_epoch_covers_the_data_and_respects_the_cap(tmp_path):
    task = ToyTask()
    train(toy_model(0), task, toy_data(23), toy_data(10, 1), tmp_path / "a", cfg(epochs=1))
    assert len(task.seen_ids) == 5 and sorted(i for b in task.seen_ids for i in b) == sorted(f"s{i}" for i in range(23))
    task = ToyTask()
    train(toy_model(0), task, toy_data(23), toy_data(10, 1), tmp_path / "b", cfg(epochs=2, max_batches_per_epoch=2))
    assert [len(b) for b in task.seen_ids] == [5, 5, 5, 5]
    assert task.seen_ids[:2] != task.seen_ids[2:]  # a new order each epoch


def test_sgd_nesterov_and_gradient_clipping_run(tmp_path):
    res = train(toy_model(0), ToyTask(), toy_data(), toy_data(10, 1), tmp_path,
                cfg(epochs=2, optimizer="sgd_nesterov", lr=0.01, grad_clip=1.0))
    opt = torch.load(tmp_path / "last.pt", weights_only=True)["optimizer"]
    assert opt["param_groups"][0]["nesterov"] is True and opt["param_groups"][0]["momentum"] == 0.9
    assert res.epochs_done == 2


def test_non_finite_loss_names_the_batch(tmp_path):
    class Exploding(ToyTask):
        def loss(self, model, batch):
            return super().loss(model, batch) * float("inf")

    with pytest.raises(FloatingPointError, match=r"epoch 1/1, step 1, samples \[.s"):
        train(toy_model(0), Exploding(), toy_data(), toy_data(10, 1), tmp_path, cfg(epochs=1))


def test_bad_task_is_refused(tmp_path):
    class NoEvaluate:
        metric, mode = "val_x", "min"

        def collate(self, items): ...
        def batch_sampler(self, dataset, batch_size, seed): ...
        def loss(self, model, batch): ...

    with pytest.raises(ValueError, match=r"lacks \['evaluate'\]"):
        train(toy_model(0), NoEvaluate(), toy_data(), toy_data(), tmp_path, cfg())
    with pytest.raises(ValueError, match="empty dataset"):
        train(toy_model(0), ToyTask(), [], toy_data(), tmp_path, cfg())


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)


def test_shuffled_batch_sampler():
    s = ShuffledBatchSampler(10, 4, seed=3)
    first = list(s)
    assert [len(b) for b in first] == [4, 4, 2] and sorted(sum(first, [])) == list(range(10))
    s.set_epoch(1)
    assert list(s) != first and list(ShuffledBatchSampler(10, 4, seed=3)) == first
    assert len(ShuffledBatchSampler(10, 4, drop_last=True)) == 2


def test_rank_batches_are_disjoint_and_equal_in_number():
    glob = list(training._RankBatches(ShuffledBatchSampler(23, 5, seed=1), 0, 1, None))
    shares = [list(training._RankBatches(ShuffledBatchSampler(23, 5, seed=1), r, 2, None)) for r in range(2)]
    assert len(glob) == 5
    # rank r takes global batches r, r + 2, ...; the 5th is dropped so that both ranks take 2 steps
    assert shares == [[glob[0], glob[2]], [glob[1], glob[3]]]


# -- DDP: two gloo processes, started with the environment torchrun would give them --

def ddp_worker(rank: int, out_dir: str, port: int) -> None:
    """One process: torchrun's variables, then train the toy model 2 epochs; save weights and batch ids."""
    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    task = ToyTask()
    model = toy_model(0)
    train(model, task, toy_data(24, 0), toy_data(10, 1), Path(out_dir) / "run",
          cfg(epochs=2, batch_size=4, restore_best=False))
    assert not torch.distributed.is_initialized()  # train() leaves the group it joined
    torch.save({"model": model.state_dict(), "ids": task.seen_ids, "validated": len(task.snapshots)},
               Path(out_dir) / f"rank{rank}.pt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_gloo_processes_keep_identical_weights(tmp_path):
    torch.multiprocessing.spawn(ddp_worker, args=(str(tmp_path), free_port()), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert same_state(r0["model"], r1["model"])  # parameters and BatchNorm statistics
    assert not same_state(r0["model"], toy_model(0).state_dict())
    # disjoint shares: 24 samples / batch 4 = 6 global batches per epoch, 3 per rank
    assert len(r0["ids"]) == len(r1["ids"]) == 6
    for epoch in range(2):
        a = {i for b in r0["ids"][3 * epoch: 3 * epoch + 3] for i in b}
        b = {i for b in r1["ids"][3 * epoch: 3 * epoch + 3] for i in b}
        assert not a & b and len(a | b) == 24
    assert (r0["validated"], r1["validated"]) == (2, 0)  # validation on rank 0 only
    rows = read_log(tmp_path / "run" / "log.csv")
    assert len(rows) == 2 and float(rows[1]["val_n"]) == 10
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert len(last["rng"]) == 2 and same_state(last["model"], r0["model"])
