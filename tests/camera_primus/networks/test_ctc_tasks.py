"""CTC tasks: feasibility of labels, greedy decoding, the loss, learning a toy problem, posterior files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mtlnb.camera_primus.networks import ctc_tasks
from mtlnb.camera_primus.corpus import datasets, feature_cache
from mtlnb.camera_primus.decoding import search as wordgraph
from mtlnb.camera_primus.networks.ctc_tasks import ctc_min_frames
from mtlnb.camera_primus.corpus.datasets import Vocabulary
from mtlnb.profiles import get_profile
from mtlnb.core.training import TrainConfig, train

VOCAB = Vocabulary(("a", "b", "c"))  # blank = 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- toy data: each symbol is a 3-column block lighting its own two rows of an 8-row "image" --

def render(tokens: list[str], gap: int = 1) -> torch.Tensor:
    cols = []
    for t in tokens:
        k = VOCAB.index[t]
        block = torch.zeros(8, 3)
        block[2 * k: 2 * k + 2] = 1.0
        cols += [block, torch.zeros(8, gap)]
    return torch.cat([torch.zeros(8, 1)] + cols, dim=1)[None]  # (1, 8, W)


def toy_items(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        toks = [str(s) for s in rng.choice(VOCAB.symbols, size=rng.integers(2, 5))]
        items.append({"id": f"x{seed}_{i}", "image": render(toks), "labels": torch.tensor(VOCAB.encode(toks)),
                      "tokens": toks})
    return items


class TinyCTC(nn.Module):
    """Conv → pool width by 2 → BiGRU → log-softmax over |V|+1 classes; one frame per 2 columns."""

    def __init__(self, n_classes: int = len(VOCAB) + 1, hidden: int = 24):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d((1, 2))
        self.drop = nn.Dropout(0.1)
        self.rnn = nn.GRU(4 * 8, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, n_classes)

    def forward(self, x):
        h = self.pool(torch.relu(self.conv(x)))
        b, c, hh, w = h.shape
        h = self.rnn(self.drop(h.permute(0, 3, 1, 2).reshape(b, w, c * hh)))[0]
        return self.out(h).log_softmax(-1)

    def output_lengths(self, widths):
        return torch.div(torch.as_tensor(widths), 2, rounding_mode="floor")


# -- feasibility --

def test_ctc_min_frames_hand_cases():
    assert ctc_min_frames([]) == 0
    assert ctc_min_frames([0, 1, 2]) == 3
    assert ctc_min_frames([0, 0]) == 3  # a, blank, a
    assert ctc_min_frames([2, 2, 2]) == 5
    assert ctc_min_frames([0, 1, 0]) == 3  # repeats count only between neighbours
    assert ctc_min_frames([0, 0, 1, 1, 1]) == 8


def feasibility_items():
    def item(sid, labels, width):
        return {"id": sid, "labels": torch.tensor(labels, dtype=torch.long), "image": torch.zeros(1, 8, width)}
    return [
        item("ok3", [0, 1, 2], 6),  # 3 frames, needs 3
        item("rep_short", [0, 0], 5),  # 2 frames, needs 3
        item("rep_ok", [0, 0], 6),  # 3 frames, needs 3
        item("triple", [1, 1, 1], 9),  # 4 frames, needs 5
        item("empty", [], 10),
        item("no_frame", [2], 1),  # width 1 gives no frame at all
    ]


def test_check_ctc_feasible_finds_short_inputs_and_repeats():
    def frames(widths):  # like the CRNNs: W // 2, and an error for a width that gives no frame
        out = torch.div(torch.as_tensor(widths), 2, rounding_mode="floor")
        if int(out.min()) < 1:
            raise ValueError("no output frame")
        return out

    bad = ctc_tasks.check_ctc_feasible(feasibility_items(), frames, "image")
    assert list(bad) == ["rep_short", "triple", "empty", "no_frame"]
    assert bad["rep_short"] == ("label of 2 symbols with 1 repeated neighbours needs 3 CTC frames, "
                                "the network gives 2 (image width 5)")
    assert "needs 5 CTC frames, the network gives 4" in bad["triple"]
    assert bad["empty"] == "empty label"
    assert "the network gives 0 (image width 1)" in bad["no_frame"]


def test_filter_feasible_leaves_out_with_a_count():
    with pytest.warns(UserWarning, match="4 of 6 samples left out"):
        kept, bad = ctc_tasks.filter_feasible(feasibility_items(), lambda w: np.asarray(w) // 2, "image")
    assert [it["id"] for it in kept] == ["ok3", "rep_ok"] and len(bad) == 4


def test_filter_feasible_on_a_primus_dataset(tiny_corpus, tmp_path):
    cache = feature_cache.build_cache(tiny_corpus, jobs=1, progress=False)
    labels = datasets.load_labels(cache, cache.ids)
    vocab = datasets.Vocabulary.from_sequences(labels.values())
    ds = datasets.PrimusDataset(cache, ["t0", "t1", "t2", "t3"], vocab, modality="image")
    # 5 frames for everyone: t0 and t3 have 6 tokens (tiny_corpus.TINY_LABELS), t1 and t2 have 5, none repeats
    with pytest.warns(UserWarning, match="2 of 4 samples left out"):
        kept, bad = ctc_tasks.filter_feasible(ds, lambda w: np.full(len(w), 5), "image")
    assert isinstance(kept, datasets.PrimusDataset) and kept.ids == ["t1", "t2"] and len(ds) == 4
    assert sorted(bad) == ["t0", "t3"] and kept.left_out["t0"].startswith("label of 6 symbols")
    assert kept[0]["id"] == "t1" and kept.widths("image") == [ds.widths("image")[1], ds.widths("image")[2]]

    # and the real pieces end to end: the baseline OMR CRNN, one epoch, posteriors of the unfiltered set
    from mtlnb.camera_primus.networks import crnn

    torch.manual_seed(0)
    model = crnn.CRNN(crnn.omr_config(len(vocab)))
    task = ctc_tasks.omr_task(vocab)
    res = train(model, task, kept, ds, tmp_path / "run", TrainConfig(epochs=1, batch_size=2, progress=False))
    assert res.epochs_done == 1 and np.isfinite(res.history[0]["train_loss"])
    paths = ctc_tasks.export_posteriors(tmp_path / "run", model, task, {"val": ds})
    with ctc_tasks.load_posteriors(paths["val"]) as post:
        assert list(post) == ["t0", "t1", "t2", "t3"] and post.vocabulary == vocab
        assert [post[s].shape for s in post] == [(w // 2, len(vocab) + 1) for w in ds.widths("image")]
        assert all(np.allclose(np.exp(post[s]).sum(axis=1), 1.0, atol=1e-2) for s in post)  # float16 softmax rows


# -- loss and decoding --

def test_greedy_decode_hand_case_and_agrees_with_wordgraph():
    a, b, blank = 0, 1, 3
    path = [a, a, blank, a, b, b, blank, b, 2]  # -> a a b b, then c cut off by the length
    lp = torch.full((1, len(path), 4), -5.0)
    lp[0, torch.arange(len(path)), torch.tensor(path)] = -0.1
    assert ctc_tasks.greedy_decode(lp, torch.tensor([8]), blank) == [[a, a, b, b]]
    g = torch.Generator().manual_seed(0)
    lp = torch.randn(3, 12, 4, generator=g).log_softmax(-1)
    lengths = torch.tensor([12, 7, 1])
    ours = ctc_tasks.greedy_decode(lp, lengths, blank)
    theirs = [wordgraph.greedy_decode(lp[i, :n].numpy(), VOCAB.symbols) for i, n in enumerate(lengths.tolist())]
    assert [VOCAB.decode(o) for o in ours] == theirs


def test_loss_names_infeasible_samples():
    task = ctc_tasks.omr_task(VOCAB)
    items = toy_items(2, 0)
    items.append({"id": "too_short", "image": torch.zeros(1, 8, 4), "labels": torch.tensor([0, 0, 0]),
                  "tokens": ["a", "a", "a"]})
    batch = task.collate(items)
    with pytest.raises(ValueError, match=r"\['too_short'\]"):
        task.loss(TinyCTC(), batch)


def test_loss_is_the_batch_mean_of_per_sample_ctc():
    torch.manual_seed(0)
    model = TinyCTC().eval()
    task = ctc_tasks.omr_task(VOCAB)
    batch = task.collate(toy_items(4, 1))
    with torch.no_grad():
        lp = model(batch["image"])
        lengths = batch["image_widths"] // 2
        per = [nn.functional.ctc_loss(lp[i, : lengths[i]], batch["labels"][i, : batch["label_lengths"][i]],
                                      lengths[i: i + 1], batch["label_lengths"][i: i + 1], blank=3, reduction="sum")
               for i in range(4)]
        assert float(task.loss(model, batch)) == pytest.approx(float(sum(per) / 4), rel=1e-5)
        assert task.evaluate(model, [batch])["loss"] == pytest.approx(float(sum(per) / 4), rel=1e-5)


class FixedPaths(nn.Module):
    """A "network" whose best path per frame is given: frame t of sample b favours ``paths[b][t]``."""

    def __init__(self, paths):
        super().__init__()
        self.paths = paths
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        t = x.shape[-1] // 2
        lp = torch.full((x.shape[0], t, 4), -6.0)
        for b, path in enumerate(self.paths):
            lp[b, torch.arange(len(path)), torch.tensor(path)] = -0.01
        return lp.log_softmax(-1)

    def output_lengths(self, widths):
        return torch.as_tensor(widths) // 2


def test_evaluate_greedy_ser_by_hand():
    a, b, c, blank = 0, 1, 2, 3
    items = [{"id": "r1", "image": torch.zeros(1, 8, 12), "labels": torch.tensor([a, b]), "tokens": ["a", "b"]},
             {"id": "r2", "image": torch.zeros(1, 8, 10), "labels": torch.tensor([c, c]), "tokens": ["c", "c"]}]
    # r1 (6 frames) decodes to "a c": one substitution; r2 (5 frames, the 6th is padding) to "c": one deletion,
    # the "a" in its padding frame must not be read.  SER = 100 * 2 / 4.
    model = FixedPaths([[a, a, blank, c, c, blank], [c, c, blank, blank, blank, a]])
    task = ctc_tasks.omr_task(VOCAB)
    out = task.evaluate(model, [task.collate(items)])
    assert out["ser"] == 50.0


def test_tiny_ctc_model_learns_a_toy_problem(tmp_path):
    torch.manual_seed(0)
    model = TinyCTC()
    task = ctc_tasks.omr_task(VOCAB)
    res = train(model, task, toy_items(48, 0), toy_items(16, 1), tmp_path,
                TrainConfig(epochs=12, batch_size=8, lr=1e-2, seed=0, progress=False, device="cpu"))
    first, last = res.history[0], res.history[-1]
    assert last["train_loss"] < 0.5 * first["train_loss"]
    assert res.best_value < first["val_ser"] and res.best_value < 50.0
    assert {"val_ser", "val_loss"} <= set(last)


def test_gradspsa_task_adds_the_sharing_loss_and_leaves_omr_alone():
    from mtlnb.camera_primus.networks import crnn, gradspsa_a2s as gradspsa

    torch.manual_seed(0)
    v = Vocabulary(tuple("abcde"))
    model = gradspsa.GradSPSAA2S(gradspsa.GradSPSAConfig(len(v)), crnn.CRNN(crnn.omr_config(len(v))))
    items = [{"id": f"p{i}", "image": torch.rand(1, 64, 40 + 4 * i), "audio": torch.rand(1, 256, 48 + 8 * i),
              "labels": torch.tensor([0, 1, 2 + i]), "tokens": ["a", "b", "cd"[i]]} for i in range(2)]
    with_sharing, ctc_only = ctc_tasks.gradspsa_task(v), ctc_tasks.gradspsa_task(v, sharing_loss=False)
    batch = with_sharing.collate(items)
    model.eval()  # same dropout-free forward for both losses
    total, ctc = with_sharing.loss(model, batch), ctc_only.loss(model, batch)
    # (float32 difference of two ~30-nat losses: absolute tolerance)
    assert float((total - ctc).detach()) == pytest.approx(float(model.sharing_loss().detach()), abs=2e-5)
    assert float(model.sharing_loss().detach()) > 1e-4
    total.backward()
    assert all(p.grad is None for p in model.omr.parameters())
    assert model.conv1.conv.weight.grad is not None


def test_train_config_from_profile():
    paper = get_profile("paper").train
    omr, a2s, grad = (ctc_tasks.train_config(paper, n) for n in ("omr", "a2s", "gradspsa"))
    assert (omr.batch_size, a2s.batch_size, grad.batch_size) == (16, 4, 2)  # the papers' batch sizes
    assert omr.epochs == a2s.epochs == grad.epochs == 150 and omr.lr == 1e-3 and omr.optimizer == "adam"
    smoke = ctc_tasks.train_config(get_profile("smoke").train, "a2s", seed=3)
    assert smoke.max_batches_per_epoch == 2 and smoke.seed == 3
    with pytest.raises(ValueError, match="network"):
        ctc_tasks.train_config(paper, "piano")


# -- posteriors --

def test_posteriors_round_trip(tmp_path):
    torch.manual_seed(0)
    model = TinyCTC()
    model.train()
    task = ctc_tasks.omr_task(VOCAB)
    items = toy_items(5, 2)
    path = ctc_tasks.save_posteriors(model, items, tmp_path / "posteriors_val.npz", task, dtype="float32",
                                     device="cpu")
    assert model.training  # the mode is restored
    model.eval()
    with ctc_tasks.load_posteriors(path) as post:
        assert list(post) == [it["id"] for it in items] and len(post) == 5
        assert post.vocabulary == VOCAB and post.blank == 3
        for it in items:
            expected = model(it["image"][None])[0].detach().numpy()
            assert expected.shape == (it["image"].shape[-1] // 2, 4)
            assert post[it["id"]].dtype == np.float32
            np.testing.assert_array_equal(post[it["id"]], expected)
        with pytest.raises(KeyError):
            post["__blank__"]
    # float16 and batched: same frames per sample, values close (padding reaches the backward GRU a little)
    half = ctc_tasks.save_posteriors(model, items, tmp_path / "half.npz", task, batch_size=3, device="cpu")
    with ctc_tasks.load_posteriors(half) as post, ctc_tasks.load_posteriors(path) as full:
        for sid in full:
            assert post[sid].shape == full[sid].shape
            np.testing.assert_allclose(np.exp(post[sid]), np.exp(full[sid]), atol=0.05)
    # the raw file is a plain npz
    raw = np.load(path)
    assert raw["__vocabulary__"].tolist() == ["a", "b", "c"] and int(raw["__blank__"]) == 3
    raw.close()


def test_posteriors_refuse_reserved_ids_and_other_files(tmp_path):
    item = toy_items(1, 0)[0]
    item["id"] = "__vocabulary__"
    with pytest.raises(ValueError, match="reserved"):
        ctc_tasks.save_posteriors(TinyCTC(), [item], tmp_path / "p.npz", ctc_tasks.omr_task(VOCAB), device="cpu")
    assert not (tmp_path / "p.npz").exists()  # nothing half-written
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not a posteriors file"):
        ctc_tasks.load_posteriors(tmp_path / "other.npz")


def test_export_posteriors_uses_best_weights(tmp_path):
    torch.manual_seed(0)
    task = ctc_tasks.omr_task(VOCAB)
    train(TinyCTC(), task, toy_items(16, 0), toy_items(4, 1), tmp_path,
          TrainConfig(epochs=2, batch_size=8, progress=False, device="cpu"))
    model = TinyCTC()  # other weights: export must load best.pt
    test_items = toy_items(3, 5)
    paths = ctc_tasks.export_posteriors(tmp_path, model, task, {"val": toy_items(4, 1), "test": test_items},
                                        dtype="float32", device="cpu")
    assert paths == {"val": tmp_path / "posteriors_val.npz", "test": tmp_path / "posteriors_test.npz"}
    best = TinyCTC()
    best.load_state_dict(torch.load(tmp_path / "best.pt", weights_only=True)["model"])
    best.eval()
    with ctc_tasks.load_posteriors(paths["test"]) as post:
        np.testing.assert_array_equal(post[test_items[0]["id"]],
                                      best(test_items[0]["image"][None])[0].detach().numpy())


# -- the one greedy decoder and its token-level wrapper --

def numpy_greedy(logp: np.ndarray, blank: int) -> list[int]:
    """The rule written out in NumPy: argmax per frame (ties: the first class), repeats merged, blanks dropped."""
    best = np.asarray(logp, dtype=np.float64).argmax(axis=1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(s) for s in best[keep] if s != blank]


def test_greedy_decode_breaks_ties_towards_the_first_class_as_numpy_does():
    lp = torch.tensor([[[0.0, 0.0, 0.0, 0.0],  # all tied: a
                        [-1.0, -5.0, -5.0, -1.0],  # a and blank tied: a (merged with the frame before)
                        [-5.0, -2.0, -2.0, -5.0],  # b and c tied: b
                        [-5.0, -5.0, -5.0, 0.0],  # blank
                        [0.0, 0.0, 0.0, 0.0]]], dtype=torch.float64)  # a again, after a blank
    assert ctc_tasks.greedy_decode(lp, torch.tensor([5]), VOCAB.blank) == [[0, 1, 0]] == [numpy_greedy(lp[0], 3)]
    assert ctc_tasks.greedy_decode(lp.numpy(), np.array([5]), VOCAB.blank) == [[0, 1, 0]]  # NumPy in: the same
    assert wordgraph.greedy_decode(lp[0].numpy(), VOCAB.symbols) == ["a", "b", "a"]


def test_greedy_decode_of_a_tensor_and_of_an_array_agree():
    g = torch.Generator().manual_seed(1)
    lp = torch.randn(4, 25, 4, generator=g).log_softmax(-1).half().float()  # float16 rounding: some ties
    lengths = torch.tensor([25, 10, 0, 3])
    assert ctc_tasks.greedy_decode(lp, lengths, 3) == ctc_tasks.greedy_decode(lp.numpy(), lengths.numpy(), 3)


def test_token_level_greedy_decode_equals_the_numpy_rule_on_quantised_posteriors():
    import warnings

    rng = np.random.default_rng(4)
    for trial in range(30):
        x = np.log(rng.dirichlet(np.full(4, 0.5), size=int(rng.integers(0, 40))))
        half = x.astype(np.float16)  # float16 rounding makes ties; posteriors files store float16
        half.flags.writeable = False  # as a memory-mapped or shared array may be
        for logp in (x, half, x[::-1], np.exp(x)):  # also strided, and probabilities instead of log-probabilities
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # e.g. torch's warning about non-writable arrays
                got = wordgraph.greedy_decode(logp, VOCAB.symbols)
            assert got == [VOCAB.symbols[i] for i in numpy_greedy(logp, 3)], trial


# -- host and device --

def test_lengths_stay_on_the_host_and_min_frames_come_with_the_batch():
    task = ctc_tasks.omr_task(VOCAB)
    items = toy_items(3, 4)
    items[0]["labels"], items[0]["tokens"] = torch.tensor([1, 1, 2]), ["b", "b", "c"]
    batch = task.collate(items)
    assert batch["label_min_frames"].tolist() == [ctc_min_frames(it["labels"].tolist()) for it in items]
    assert {"labels", "image_widths", "label_lengths", "label_min_frames"} <= set(task.host_keys)
    assert "image" not in task.host_keys  # the input goes to the device
    # a batch collated elsewhere (no label_min_frames) is checked the same way
    plain = {k: v for k, v in batch.items() if k != "label_min_frames"}
    torch.manual_seed(0)
    net = TinyCTC().eval()  # no dropout: two calls give the same loss
    assert torch.equal(task.loss(net, batch), task.loss(net, plain))
    log_probs, lengths = task.forward(net, batch)
    assert lengths.device.type == "cpu" and lengths.dtype == torch.int64
    with torch.no_grad():  # as the training loop validates
        assert task.evaluate(net, [batch]) == task.evaluate(net, [plain])
