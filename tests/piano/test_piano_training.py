"""The piano task, the paper's grids and tables, the grid runner (divergence, resume) and the LR range test."""

from __future__ import annotations

import math
import platform
import sys

import numpy as np
import pandas as pd
import pretty_midi
import pytest
import soundfile as sf
import torch
from torch import nn

from mtlnb.piano import data as piano_data, metrics as piano_metrics, paper_tables as piano_tables, training as T
from mtlnb.piano import networks as P


pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ------------------------------------------------------------------------------------------ tables and grids


@pytest.mark.parametrize("name", ["I", "II", "III"])
def test_paper_tables_reproduce_their_printed_mean_and_std(name):
    got = piano_tables.summary(piano_tables.paper_table(name))
    printed = piano_tables.PRINTED_SUMMARY[name]
    for stat in ("mean", "std"):
        # the printed values were computed from unrounded numbers: agreement to rounding (2 units of 1e-4)
        np.testing.assert_allclose(got.loc[stat].to_numpy(), printed[stat], atol=2.01e-4, err_msg=stat)


def test_table_iv_is_marked_missing():
    t = piano_tables.paper_table("IV")
    assert not piano_tables.TABLE_IV_AVAILABLE
    assert (t["status"] == "missing").all() and t[list(piano_tables.METRICS)].isna().all().all()


def test_grid_rows_are_the_papers():
    for name in ("I", "II"):
        t = piano_tables.paper_table(name)
        assert list(zip(t.lambda_velocity, t.lambda_sustain)) == list(T.TASK_WEIGHT_ROWS)
    assert list(zip(piano_tables.TABLE_III["mode"], piano_tables.TABLE_III["init"])) == list(T.CROSS_STITCH_ROWS)
    # the "–" cells of Table I are exactly the untrained tasks
    t1 = piano_tables.TABLE_I
    assert (t1.velocity_r2.isna() == (t1.lambda_velocity == 0)).all()
    assert (t1.sustain_r2.isna() == (t1.lambda_sustain == 0)).all()
    assert list(piano_tables.TABLE_II.row[piano_tables.TABLE_II.status == "diverged"]) == [2, 3, 11]


def test_paper_grid():
    runs = T.paper_grid()
    assert len(runs) == 2 * 11 + 2 * 4
    assert len({r.name for r in runs}) == len(runs)
    assert [r.table for r in runs].count("I") == 11 and [r.table for r in runs].count("IV") == 4
    r = T.task_weight_grid(0.05, rows=[6])[0]
    assert r.table == "II" and r.lambdas == {"onsets": 1, "frames": 1, "offsets": 1, "velocity": 0.01,
                                             "sustain": 0.1}
    cs = T.cross_stitch_grid(0.01)
    assert [(c.model.mode, c.model.init) for c in cs] == list(T.CROSS_STITCH_ROWS)
    assert all(c.weights == (1.0,) * 5 and c.table == "III" for c in cs)
    with pytest.raises(ValueError, match="row 12"):
        T.task_weight_grid(0.01, rows=[12])
    assert [c.row for c in T.cross_stitch_grid(0.05, rows=[3])] == [3]


def test_profile_grids():
    from mtlnb.profiles import get_profile

    runs, settings = T.profile_grid(get_profile("paper").piano)
    assert len(runs) == 30 and settings.updates == 680_000 and settings.evals == 34 and settings.batch_size == 64
    assert settings.updates_per_eval == 20_000 and all(r.model.maps is None for r in runs)
    runs, settings = T.profile_grid(get_profile("smoke").piano)
    assert [(r.table, r.row) for r in runs] == [("II", 1), ("II", 9), ("IV", 1), ("IV", 3)]


def test_format_table_and_compare():
    ours = pd.DataFrame([{"table": "II", "row": 1, **{m: 0.5 for m in piano_tables.METRICS}, "status": "ok"},
                         {"table": "II", "row": 2, **{m: float("nan") for m in piano_tables.METRICS},
                          "status": "diverged"}])
    shown = piano_tables.format_table(ours)
    assert shown.loc[1, "onsets_f1"] == "–" and shown.loc[0, "onsets_f1"] == "0.5000"
    both = piano_tables.compare(ours, "II")
    assert both.loc[(1, 0.0, 0.0), ("On F1", "paper")] == 0.8487
    assert both.loc[(1, 0.0, 0.0), ("On F1", "ours")] == 0.5
    assert both.loc[(2, 0.0, 0.01), ("status", "ours")] == "diverged"
    assert math.isnan(both.loc[(5, 0.01, 0.01), ("On F1", "ours")])  # not run


# ------------------------------------------------------------------------------------------------- the task


class _Fixed(nn.Module):
    """Returns fixed outputs, whatever the input: for hand-computed losses."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs = outputs
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return {t: v + 0 * self.w for t, v in self.outputs.items()}


def test_loss_is_the_weighted_sum_by_hand():
    b = 2
    outputs = {"onsets": torch.zeros(b, 88), "frames": torch.zeros(b, 88), "offsets": torch.zeros(b, 88),
               "velocity": torch.full((b, 88), 0.5), "sustain": torch.ones(b, 1)}
    batch = {"x": torch.zeros(b, 11, 144), "onsets": torch.ones(b, 88), "frames": torch.zeros(b, 88),
             "offsets": torch.ones(b, 88), "velocity": torch.full((b, 88), 0.25), "sustain": torch.zeros(b, 1)}
    task = T.PianoTask({"velocity": 0.1, "sustain": 0.01})
    # logit 0 -> BCE ln 2 for either target; MSE (0.5 - 0.25)² = 0.0625 and (1 - 0)² = 1
    expected = 3 * math.log(2) + 0.1 * 0.0625 + 0.01 * 1.0
    assert task.loss(_Fixed(outputs), batch).item() == pytest.approx(expected, rel=1e-6)
    no_vel = T.PianoTask({"velocity": 0.0})
    assert "velocity" not in no_vel.task_losses(outputs, batch)
    with pytest.raises(ValueError, match="unknown task"):
        T.PianoTask({"pedal": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        T.PianoTask({"sustain": -1.0})


def test_samplers():
    a = list(piano_data.RandomBatches(100, 8, 5, seed=3))
    assert a == list(piano_data.RandomBatches(100, 8, 5, seed=3))
    s = piano_data.RandomBatches(100, 8, 5, seed=3)
    s.set_epoch(1)
    assert list(s) != a and len(s) == 5 and all(len(b) == 8 for b in a)
    seq = list(piano_data.SequentialBatches(10, 4))
    assert seq == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_divergence_rules():
    ok = [{"epoch": 1, "train_loss": 2.0, "val_loss": 1.5}, {"epoch": 2, "train_loss": 1.0, "val_loss": 1.0}]
    assert T._diverged(ok, 10) is None
    assert "non-finite" in T._diverged(ok + [{"epoch": 3, "train_loss": 1.0, "val_loss": float("nan")}], 10)
    assert "epoch 3" in T._diverged(ok + [{"epoch": 3, "train_loss": 10.5, "val_loss": 1.0}], 10)


# ----------------------------------------------------------------------------------- on a tiny real cache


def _piece(folder, name, seconds, seed):
    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    for k in range(int(seconds * 4)):
        piano.notes.append(pretty_midi.Note(int(rng.integers(40, 80)), int(rng.integers(40, 100)), 0.25 * k,
                                            0.25 * k + 0.2))
    piano.control_changes = [pretty_midi.ControlChange(64, 100, 0.3), pretty_midi.ControlChange(64, 0, 1.2)]
    pm.instruments.append(piano)
    (folder / "2020").mkdir(parents=True, exist_ok=True)
    pm.write(str(folder / "2020" / f"{name}.midi"))
    t = np.arange(int(seconds * 44100)) / 44100
    sf.write(folder / "2020" / f"{name}.wav", 0.2 * np.sin(2 * np.pi * (220 + 50 * seed) * t), 44100)
    return dict(canonical_composer="Test", canonical_title=name, year=2020, midi_filename=f"2020/{name}.midi",
                audio_filename=f"2020/{name}.wav", duration=seconds)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("maestro")
    rows = [dict(_piece(root, n, 1.5, i), split=s) for i, (n, s) in
            enumerate([("a", "train"), ("b", "train"), ("c", "validation"), ("d", "validation")])]
    pd.DataFrame(rows).to_csv(root / "maestro-v3.0.0.csv", index=False)
    return piano_data.build_cache(root, root / "cache", progress=False)


def test_frame_batches_match_the_frames_dataset(cache):
    data = piano_data.PianoFrameBatches(cache, "validation", shuffle=False)
    frames = piano_data.PianoFrames(cache, "validation")
    idx = [0, 5, len(data) - 1]
    batch = data.__getitems__(idx)
    assert batch["x"].shape == (3, 11, 144) and batch["sustain"].shape == (3, 1)
    assert batch["piece"].tolist() == [0, 0, 1]
    x, y = frames[len(data) - 1]
    assert torch.equal(batch["x"][2], x) and torch.equal(batch["frames"][2], y["frames"])
    assert torch.equal(data[5]["onsets"], batch["onsets"][1])


def test_run_grid_trains_resumes_and_marks_divergence(cache, tmp_path):
    runs = T.task_weight_grid(0.01, rows=[1, 9], maps=2) + T.cross_stitch_grid(0.01, maps=4)[:1]
    blown = T.PianoRun(T.ModelSpec("hard", maps=2), 1e9, (1.0,) * 5)  # this η sends the loss to infinity
    settings = T.GridSettings(updates=4, evals=2, batch_size=16, restarts=1, device="cpu")
    df = T.run_grid(runs + [blown], cache, tmp_path, settings)
    assert list(df.status) == ["ok", "ok", "ok", "diverged"]
    assert list(df.attempts) == [1, 1, 1, 2]  # the diverged configuration was retried with a new seed
    ok = df[df.status == "ok"]
    assert ok[["onsets_f1", "frames_f1", "offsets_f1"]].notna().all().all()
    assert math.isnan(df.loc[0, "velocity_r2"]) and math.isnan(df.loc[0, "sustain_r2"])  # λ = 0: "–"
    assert not math.isnan(df.loc[1, "velocity_r2"]) and (ok.epoch == 2).all()
    assert df.loc[3, ["onsets_f1", "velocity_r2"]].isna().all()
    assert (tmp_path / runs[0].name / "last.pt").exists() and (tmp_path / f"{blown.name}-restart1").is_dir()
    again = T.run_grid(runs + [blown], cache, tmp_path, settings)  # finished: read back, not retrained
    pd.testing.assert_frame_equal(df.drop(columns="seconds"), again.drop(columns="seconds"))


def test_lr_range_test_sweeps_and_suggests(cache):
    torch.manual_seed(0)
    model = T.ModelSpec("hard", maps=2).build()
    data = piano_data.PianoFrameBatches(cache, "train")
    res = T.lr_range_test(model, T.PianoTask(), data, start=1e-5, stop=1e4, max_batches=40, batch_size=16)
    assert len(res.lrs) == len(res.losses) <= 40
    ratios = res.lrs[1:] / res.lrs[:-1]
    np.testing.assert_allclose(ratios, (1e4 / 1e-5) ** (1 / 39), rtol=1e-9)  # geometric sweep
    assert res.lrs[0] == 1e-5
    assert res.suggested_lr == pytest.approx(res.best_lr / 10)
    assert res.best_lr == res.lrs[np.argmin(res.losses)]
    # the first smoothed value is the first loss itself (bias correction)
    assert res.losses[0] == pytest.approx(res.raw_losses[0])
    assert res.stopped  # it says why it ended
    with pytest.raises(ValueError):
        T.lr_range_test(model, T.PianoTask(), data, start=1.0, stop=0.1)


@pytest.mark.parametrize("losses, stopped, says", [
    ([1.0, 0.99, 0.97, 0.98, 0.99], "reached 5 batches", "fell by only 3 %"),  # flat noise: nothing to suggest
    ([1.0, 0.9, 0.7, 0.5, 0.4], "reached 5 batches", "still falling"),  # the minimum is the sweep's end
    ([1.0, 0.8, 0.5, 0.7, 9.0], "smoothed loss above 10 × its minimum at step 5", "suggested η = 0.001"),
])
def test_lr_range_verdict_suggests_only_what_the_curve_shows(losses, stopped, says):
    lrs = np.array([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    res = T.LRRangeResult(lrs, np.array(losses), np.array(losses), float(lrs[np.argmin(losses)]),
                          float(lrs[np.argmin(losses)]) / 10, stopped)
    assert says in res.verdict()
    assert ("no rate suggested" in res.verdict()) == ("suggested η" not in res.verdict())


def test_predict_piece_and_note_level_scores(cache):
    torch.manual_seed(0)
    model = T.ModelSpec("hard", maps=2).build()
    pid = cache.select("validation")[0].id
    pred = piano_metrics.predict_piece(model, cache.spectrogram(pid), batch_size=50)
    n = cache.select("validation")[0].n_frames
    assert {t: v.shape for t, v in pred.items()} == {"onsets": (n, 88), "frames": (n, 88), "offsets": (n, 88),
                                                     "velocity": (n, 88), "sustain": (n, 1)}
    assert not model.training  # evaluated without noise
    # the same frames through the dataset give the same predictions
    data = piano_data.PianoFrameBatches(cache, "validation", shuffle=False)
    with torch.no_grad():
        direct = P.activations(model(data.__getitems__(list(range(n)))["x"]))
    np.testing.assert_allclose(pred["frames"], direct["frames"].numpy(), atol=1e-6)
    scores = piano_metrics.note_level_scores(model, cache, "validation")
    assert list(scores.piece) == [p.id for p in cache.select("validation")]
    values = scores.drop(columns="piece").to_numpy()
    assert ((values >= 0) & (values <= 1)).all()


def test_alpha_log_records_init_and_every_validation_and_survives_a_resume(cache, tmp_path):
    run = T.cross_stitch_grid(0.05, rows=[2], maps=4)[0]  # detached, imbalanced: α starts at 0.9 / 0.1
    settings = T.GridSettings(updates=6, evals=3, batch_size=16, device="cpu")
    T.run_grid([run], cache, tmp_path, settings)
    h = T.alpha_history(tmp_path / run.name)
    assert list(h.epochs) == [0, 1, 2, 3] and list(h.updates) == [0, 2, 4, 6]
    assert len(h.layers) == len(run.model.config().stem)  # one unit after every stem block
    eye = np.eye(5)
    for layer in h.layers:
        assert layer.shape == (4, 5, 5)
        np.testing.assert_allclose(layer[0], 0.9 * eye + 0.1 * (1 - eye))  # the paper's imbalanced init
        assert not np.allclose(layer[-1], layer[0])  # α learned, also in the detached network
    # the last snapshot is the α of the model in last.pt
    model = T.load_run_model(run, tmp_path / run.name)
    np.testing.assert_allclose(h.layers[0][-1], T.cross_stitch_alphas(model)[0])
    # a resume that repeats an epoch (last.pt one epoch behind) overwrites that epoch's snapshot, adds none
    ckpt = torch.load(tmp_path / run.name / "last.pt", weights_only=True)
    ckpt["epoch"], ckpt["history"] = 2, ckpt["history"][:2]
    torch.save(ckpt, tmp_path / run.name / "last.pt")
    (tmp_path / run.name / "status.json").unlink()
    T.run_grid([run], cache, tmp_path, settings)
    assert list(T.alpha_history(tmp_path / run.name).epochs) == [0, 1, 2, 3]
    with pytest.raises(FileNotFoundError):
        T.alpha_history(tmp_path)  # no alphas.json: a hard-sharing run
    fig = h.plot(snapshots=2)
    assert len(fig.axes) == 2 * len(h.layers) + 1  # heatmaps + the colour bar


def test_learning_curves_stack_the_logs(cache, tmp_path):
    runs = T.task_weight_grid(0.05, rows=[1], maps=2) + T.cross_stitch_grid(0.05, rows=[3], maps=4)
    settings = T.GridSettings(updates=4, evals=2, batch_size=16, device="cpu")
    df = T.run_grid(runs, cache, tmp_path, settings)
    curves = T.learning_curves(df, settings.updates_per_eval)
    assert len(curves) == 4 and list(curves.updates) == [2, 4, 2, 4]
    assert list(curves.run.unique()) == [r.name for r in runs]
    assert {"train_loss", "val_loss", "val_frames_f1"} <= set(curves.columns)
    with pytest.raises(ValueError):
        T.load_run_model(runs[0], tmp_path / runs[0].name, which="middle")


def _result(arch, row, vel, sus, status="ok", vel_r2=float("nan"), lr=0.05):
    return {"arch": arch, "row": row, "lambda_velocity": vel, "lambda_sustain": sus, "status": status,
            "velocity_r2": vel_r2, "lr": lr}


def test_observations_read_the_numbers():
    ours = pd.DataFrame([_result("hard", 7, 0.1, 0.0, vel_r2=0.40), _result("hard", 8, 0.1, 0.01, vel_r2=0.45),
                         _result("hard", 9, 0.1, 0.1, vel_r2=0.38), _result("hard", 11, 1.0, 0.0, "diverged"),
                         _result("cross_stitch", 1, 1.0, 1.0, vel_r2=0.5),
                         _result("cross_stitch", 3, 1.0, 1.0, vel_r2=0.6)])
    stable, helps = piano_tables.observations(ours)
    assert stable["verdict"] == "holds" and "2 of 2" in stable["evidence"] and "row 11" in stable["evidence"]
    assert helps["verdict"] == "partly" and "1 of 2 pairs" in helps["evidence"]  # 0.45 > 0.40, 0.38 < 0.40
    # a diverged cross-stitch run contradicts the claim; without paired rows the second one is not tested
    ours.loc[5, "status"] = "diverged"
    stable, helps = piano_tables.observations(ours.drop(index=[0]))
    assert stable["verdict"] == "does not hold" and helps["verdict"] == "not tested"
    # the mini grid (rows 1 and 9, two cross-stitch nets): the hard-sharing contrast is not in it
    mini = pd.DataFrame([_result("hard", 1, 0.0, 0.0), _result("hard", 9, 0.1, 0.1, vel_r2=0.3),
                         _result("cross_stitch", 1, 1.0, 1.0), _result("cross_stitch", 3, 1.0, 1.0)])
    stable, helps = piano_tables.observations(mini)
    assert stable["verdict"] == "partly" and helps["verdict"] == "not tested"
    # row 11 diverged in the paper but trained here: cross-stitch's advantage is not shown
    stable, _ = piano_tables.observations(pd.concat([mini, pd.DataFrame([_result("hard", 11, 1.0, 0.0)])]))
    assert stable["verdict"] == "partly" and "stable here too" in stable["evidence"]
    with pytest.raises(ValueError, match="lambda_sustain"):
        piano_tables.observations(mini.drop(columns="lambda_sustain"))


def test_keep_freed_memory_is_set_where_the_c_library_is_glibc():
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert T.keep_freed_memory() is glibc
    assert T.keep_freed_memory() is glibc  # idempotent
