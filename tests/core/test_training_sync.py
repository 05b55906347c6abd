"""The training loop's host reads: deferred loss checks give the same results, and still name the bad step."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mtlnb.core import training
from mtlnb.core.training import ShuffledBatchSampler, TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Task:
    """MSE regression; ``poison`` makes the loss of that training step (from 1) NaN; ``host_keys`` keeps ``n``."""

    metric = "val_mse"
    mode = "min"
    host_keys = ("n",)

    def __init__(self, poison: int | None = None):
        self.poison, self.steps, self.devices = poison, 0, []

    def collate(self, items):
        return {"ids": [i for i, _, _ in items], "x": torch.stack([x for _, x, _ in items]),
                "y": torch.stack([y for _, _, y in items]), "n": torch.tensor([len(items)])}

    def batch_sampler(self, dataset, batch_size, seed):
        return ShuffledBatchSampler(len(dataset), batch_size, seed)

    def loss(self, model, batch):
        self.steps += 1
        self.devices.append(batch["n"].device.type)
        loss = nn.functional.mse_loss(model(batch["x"]), batch["y"])
        return loss * math.nan if self.steps == self.poison else loss

    def evaluate(self, model, batches):
        return {"mse": sum(nn.functional.mse_loss(model(b["x"]), b["y"]).item() for b in batches)}


def data(n=30):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    return [(f"s{i}", x[i], x[i, :1] * 2) for i in range(n)]


def run(tmp_path, name, task, **config):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.1), nn.Linear(8, 1))
    cfg = TrainConfig(epochs=2, batch_size=4, device="cpu", progress=False, **config)
    ds = data()
    return model, train(model, task, ds[:24], ds[24:], tmp_path / name, cfg)


def test_deferred_checks_give_identical_results_with_fewer_host_reads(tmp_path, monkeypatch):
    reads = []
    original = training._LossCheck.check
    monkeypatch.setattr(training._LossCheck, "check", lambda self: reads.append(len(self.losses)) or original(self))
    m1, r1 = run(tmp_path, "every", Task(), check_every=1)
    per_step = list(reads)
    reads.clear()
    m5, r5 = run(tmp_path, "deferred", Task(), check_every=5)
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in r1.history] == \
           [{k: v for k, v in row.items() if k != "seconds"} for row in r5.history]
    for (name, a), b in zip(m1.state_dict().items(), m5.state_dict().values()):
        assert torch.equal(a, b), name
    # 24 samples / 4 = 6 steps per epoch: every step read once (and an empty end-of-epoch check), or at 5 and 6
    assert sum(1 for n in per_step if n) == 12
    assert [n for n in reads if n] == [5, 1, 5, 1]


def test_default_interval_is_every_step_on_the_cpu_and_deferred_elsewhere():
    assert training.check_interval(TrainConfig(), torch.device("cpu")) == 1
    assert training.check_interval(TrainConfig(), torch.device("cuda")) == training.DEFERRED_CHECK_STEPS
    assert training.check_interval(TrainConfig(check_every=7), torch.device("cuda")) == 7
    with pytest.raises(ValueError, match="check_every"):
        TrainConfig(check_every=0)


@pytest.mark.parametrize("every", [1, 4])
def test_a_deferred_check_still_names_the_bad_step_and_its_samples(tmp_path, every):
    with pytest.raises(FloatingPointError, match=r"epoch 1/2, step 3, samples \['s"):
        run(tmp_path, f"nan{every}", Task(poison=3), check_every=every)
    assert not (tmp_path / f"nan{every}" / "last.pt").exists()  # the epoch was not checkpointed


def test_host_keys_stay_on_the_host_and_timings_are_returned(tmp_path):
    task = Task()
    _, result = run(tmp_path, "t", task)
    assert set(task.devices) == {"cpu"}
    moved = training.move_to({"a": torch.ones(1), "n": torch.ones(1)}, torch.device("meta"), keep=("n",))
    assert moved["a"].device.type == "meta" and moved["n"].device.type == "cpu"
    assert [t["epoch"] for t in result.timings] == [1, 2]
    assert all(t["train_steps"] == 6 and t["val_batches"] == 2 and t["train_seconds"] > 0 for t in result.timings)
