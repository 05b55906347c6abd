"""Tests for mtlnb.camera_primus.fusion.pipeline: LM order selection, read-off tuning, the fold run and its cache, the tables.

No network runs: the posteriors files are hand-made (stage 1 of the pipeline), written in the
``mtlnb.camera_primus.networks.ctc_tasks`` format.  The central fixture is a read-off "flip": one frame favours the right symbol ``c``
over ``b`` by a log-posterior gap g chosen so that the LM (which prefers ``b`` after ``a``) wins when the acoustic
scale is below 1.75 and loses above it; the expected outputs at each scale follow from that inequality.  Both
candidate paths have two symbols, so the read-off's insertion penalty cannot change that comparison.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest

from mtlnb.core import io
from mtlnb.camera_primus import figures
from mtlnb.camera_primus.fusion import pipeline as late_fusion
from mtlnb.camera_primus.decoding import lattice_store
from mtlnb.camera_primus.networks.ctc_tasks import POSTERIORS_FORMAT, load_posteriors
from mtlnb.camera_primus.fusion.pipeline import FAITHFUL, LateFusionConfig, Readoff, select_lm, tune_readoff
from mtlnb.camera_primus.metrics import mark_differences
from mtlnb.camera_primus.decoding.ngram_lm import NGramLM
from mtlnb.camera_primus.decoding.lattice import EPS, Lattice

V = ["a", "b", "c"]  # blank = column 3
TRAIN = [["a", "b"]] * 9 + [["a", "c"]]  # the LM prefers b after a
CROSS = 1.75  # the acoustic scale at which the flip frame's acoustics start to outweigh the LM


def frames(*rows):
    """(T, 4) log-posteriors from per-frame logits {symbol or "_": logit}; unspecified columns get -30."""
    x = np.full((len(rows), 4), -30.0)
    for t, row in enumerate(rows):
        for s, v in row.items():
            x[t, 3 if s == "_" else V.index(s)] = v
    return x - np.logaddexp.reduce(x, axis=1, keepdims=True)


def write_posteriors(path, samples: dict):
    io.write_npz(path, **samples, __vocabulary__=np.array(V), __blank__=np.int64(3),
                 __format__=np.array(POSTERIORS_FORMAT))


@pytest.fixture(scope="module")
def gap():
    # ln P_LM(a b </s>) − ln P_LM(a c </s>): what the acoustics must beat.  The flip frame's gap g between c and b
    # is this divided by 1.75, so c wins iff scale · g > LM gap, i.e. iff scale > 1.75.
    lm = NGramLM(order=2).fit(TRAIN, vocabulary=V)
    lm_gap = lm.sequence_logprob(["a", "b"]) - lm.sequence_logprob(["a", "c"])
    assert 1.0 < lm_gap < 8.0  # within the search's beams (beam 15 / lattice beam 12 at scale 2.5)
    return lm_gap / CROSS


@pytest.fixture
def fold_files(tmp_path, gap):
    """val: v1 (truth "a c", the flip); test: t1 (the flip again) and t2 ("a b", clear).  A2S is always clear."""
    flip = frames({"a": 0}, {"_": 0}, {"c": 0, "b": -gap}, {"_": 0})
    ac = frames({"a": 0}, {"_": 0}, {"c": 0}, {"_": 0})
    ab = frames({"a": 0}, {"_": 0}, {"b": 0}, {"_": 0})
    paths = {"omr": {}, "a2s": {}}
    for split, omr, a2s in (("val", {"v1": flip}, {"v1": ac}), ("test", {"t1": flip, "t2": ab},
                                                                  {"t1": ac, "t2": ab})):
        for m, samples in (("omr", omr), ("a2s", a2s)):
            paths[m][split] = tmp_path / m / f"posteriors_{split}.npz"
            write_posteriors(paths[m][split], samples)
    references = {"val": {"v1": ["a", "c"]}, "test": {"t1": ["a", "c"], "t2": ["a", "b"]}}
    return paths, references


def run(fold_files, tmp_path, **kwargs):
    paths, references = fold_files
    options = dict(lm_order=2, alphas=(0.0, 0.5, 1.0), cache_dir=tmp_path / "cache", jobs=1, progress=False)
    options.update(kwargs)
    return late_fusion.run(paths["omr"], paths["a2s"], references, TRAIN, **options)


def output(result, sid, method, alpha=math.nan):
    ps = result.per_sample
    row = ps[(ps.id == sid) & (ps.method == method)]
    row = row[row.alpha.isna()] if math.isnan(alpha) else row[np.isclose(row.alpha, alpha)]
    assert len(row) == 1
    return row.output.iloc[0]


# ---------------------------------------------------------------------------------------------------------------
# read-off tuning on the flip


def test_validation_grid_and_tuned_scales(fold_files, tmp_path):
    r = run(fold_files, tmp_path)
    g = r.readoff[r.readoff.decoder == "best_path"]
    val = g[(g.split == "val") & (g.modality == "omr")]
    assert len(val) == 6 * 5  # scale grid × penalty grid
    # OMR on v1 ("a c"): the LM's "a b" wins below scale 1.75 (one substitution), c above it, whatever the penalty
    assert (val[val.acoustic_scale < CROSS].errors == 1).all()
    assert (val[val.acoustic_scale > CROSS].errors == 0).all()
    greedy = r.readoff[(r.readoff.decoder == "greedy") & (r.readoff.split == "val")].set_index("modality")
    assert greedy.loc["omr", "errors"] == 0  # the flip frame's argmax is c
    # lowest error at 2.0 … 4.0 (OMR) and everywhere (A2S): ties go to the search's scale 2.5 and penalty 0
    assert r.tuned_readoffs == r.readoffs == {"omr": Readoff(2.5, 0.0), "a2s": Readoff(2.5, 0.0)}
    # test split: t1 repeats the flip, t2 is right everywhere: 1 error in 4 symbols below 1.75
    test = g[(g.split == "test") & (g.modality == "omr") & (g.insertion_penalty == 0.0)].set_index("acoustic_scale")
    assert test.loc[1.0, "ser"] == pytest.approx(25.0)
    assert test.loc[2.5, "ser"] == 0.0
    chosen = g[(g.modality == "omr") & g.chosen]
    assert len(chosen) == 2 and (chosen.acoustic_scale == 2.5).all()  # one row per split
    table = r.unimodal()
    assert table.loc["omr", ("LM best path, faithful (1.0, 0)", "test")] == pytest.approx(25.0)
    assert table.loc["omr", ("LM best path, chosen on val", "test")] == 0.0


def test_faithful_readoff_keeps_kaldis_scale_one(fold_files, tmp_path):
    tuned = run(fold_files, tmp_path)
    faithful = run(fold_files, tmp_path, config=LateFusionConfig(readoff="faithful"))
    assert faithful.readoffs == {"omr": FAITHFUL, "a2s": FAITHFUL} and FAITHFUL == (1.0, 0.0)
    assert faithful.tuned_readoffs == {"omr": Readoff(2.5), "a2s": Readoff(2.5)}  # still reported
    assert output(faithful, "t1", "best_path_omr") == "a b"  # the LM wins at scale 1
    assert output(tuned, "t1", "best_path_omr") == "a c"
    # lattice combination at α = 1 / 0 is each modality's best path at the read-off scale
    for r in (tuned, faithful):
        for sid in ("t1", "t2"):
            assert output(r, sid, "lattice_combination", 1.0) == output(r, sid, "best_path_omr")
            assert output(r, sid, "lattice_combination", 0.0) == output(r, sid, "best_path_a2s")


def test_tune_readoff_tie_break_and_validation_only():
    grid = pd.DataFrame({
        "split": "val", "modality": ["omr"] * 4 + ["a2s"] * 4, "decoder": "best_path",
        "acoustic_scale": [1.0, 2.0, 3.0, 2.0] * 2, "insertion_penalty": [0.0, 0.0, 0.0, 1.0] * 2,
        "errors": [5, 3, 3, 2, 4, 4, 4, 4], "ref_len": 10, "ser": 0.0,
    })
    # omr: the penalised (2.0, 1.0) has the fewest errors
    # a2s: all tie; 2.0 and 3.0 are 0.5 from 2.5, penalty 0 before 1, then the smaller scale
    assert tune_readoff(grid, decoding_scale=2.5) == {"omr": Readoff(2.0, 1.0), "a2s": Readoff(2.0, 0.0)}
    assert tune_readoff(grid, decoding_scale=2.9)["a2s"] == Readoff(3.0, 0.0)
    with pytest.raises(ValueError, match="validation"):
        tune_readoff(grid.assign(split="test"))


def test_rescaled_lattice_reads_off_like_the_scaled_original():
    lat = Lattice.from_arcs(V, [(0, 1, "a", -1.0, -0.5), (0, 1, "b", -0.2, -2.0), (1, 2, None, 0.0, 0.0)])
    # scores a: s·(−1.0) − 0.5, b: s·(−0.2) − 2.0: b wins iff 0.8 s > 1.5, i.e. s > 1.875
    for s, best in ((1.0, ["a"]), (2.0, ["b"])):
        r = late_fusion.rescaled(lat, s)
        assert r.best_path() == lat.best_path(s, 1.0) == best
        np.testing.assert_allclose(r.scores(), lat.scores(s, 1.0))
    with pytest.raises(ValueError, match="acoustic_scale"):
        late_fusion.rescaled(lat, 0.0)


def test_insertion_penalty_flips_a_deletion():
    # "a" then either "b" (acoustic −2.0, LM −3.0) or nothing (acoustic −1.0, graph 0): at read-off (1, 0)
    # "a b" scores −5.0 against "a"'s −1.0; a penalty p adds p per symbol to both, once more to "a b":
    # "a b" wins iff −5 + 2p > −1 + p, i.e. p > 4
    lat = Lattice.from_arcs(V, [(0, 1, "a", 0.0, 0.0), (1, 2, "b", -2.0, -3.0), (2, 3, None, 0.0, 0.0),
                                (1, 3, None, -1.0, 0.0)])
    assert late_fusion.rescaled(lat, 1.0, 3.9).best_path() == ["a"]
    assert late_fusion.rescaled(lat, 1.0, 4.1).best_path() == ["a", "b"]
    # the penalty sits in the graph score: an LM scale of 0 drops it (Kaldi's lattice-add-penalty does the same)
    assert late_fusion.rescaled(lat, 1.0, 4.1).best_path(1.0, 0.0) == ["a"]


# ---------------------------------------------------------------------------------------------------------------
# tables


def test_tables_have_every_method_and_alpha(fold_files, tmp_path):
    r = run(fold_files, tmp_path)
    n_rows = 4 + 3 * 3 + 3  # unimodal rows, three α methods × three α, three methods without α
    assert len(r.ser) == n_rows
    assert len(r.per_sample) == 2 * n_rows
    assert set(r.ser.method) == set(late_fusion.UNIMODAL) | set(late_fusion.ALL_METHODS)
    assert r.ser[r.ser.method == "smith_waterman"].alpha.isna().all()
    # greedy: both right everywhere; corpus SER = 100 · Σ errors / Σ lengths
    s = r.ser.set_index("method")
    assert s.loc["greedy_omr", "ser"] == 0.0 and s.loc["greedy_omr", "ref_len"] == 4
    summary = r.summary(alpha=0.5)
    assert list(summary.index[:4]) == list(late_fusion.UNIMODAL)
    assert summary.loc["lattice_combination", "SER at α=0.5"] == 0.0
    # every α reads both right: a tie is reported as one, not as the first α of the sweep
    assert summary.loc["lattice_combination", "best α (test)"] == "all tie"
    assert summary.loc["greedy_omr", "best α (test)"] == ""


def test_ser_table_sums_before_dividing():
    ps = pd.DataFrame({"id": ["x", "y"], "method": "m", "alpha": 0.5, "output": "", "errors": [1, 2],
                       "ref_len": [4, 6]})
    # (1 + 2) / (4 + 6) = 30 %, not the mean of 25 % and 33.3 %
    assert late_fusion.ser_table(ps).ser.tolist() == [pytest.approx(30.0)]


def test_max_samples_caps_both_splits(fold_files, tmp_path):
    r = run(fold_files, tmp_path, max_samples=1)
    assert set(r.per_sample.id) == {"t1"}
    assert set(r.references) == {"v1", "t1"}


# ---------------------------------------------------------------------------------------------------------------
# cache and parallelism


def test_rerun_reuses_the_cache_and_detects_stale_settings(fold_files, tmp_path, monkeypatch):
    first = run(fold_files, tmp_path)
    calls = []
    original = late_fusion._process
    monkeypatch.setattr(late_fusion, "_process", lambda task: calls.append(task[0]) or original(task))
    again = run(fold_files, tmp_path)
    assert calls == []  # every shard reused
    pd.testing.assert_frame_equal(first.per_sample, again.per_sample)
    run(fold_files, tmp_path, alphas=(0.0, 0.3, 1.0))  # other α: the test shards are stale, val is not
    assert calls == ["t1", "t2"]
    calls.clear()
    paths, _ = fold_files
    st = os.stat(paths["a2s"]["val"])
    os.utime(paths["a2s"]["val"], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # "retrained" A2S
    run(fold_files, tmp_path, alphas=(0.0, 0.3, 1.0))
    assert calls == ["v1"]  # only the val split read that file
    assert (tmp_path / "cache" / "test" / "settings.json").exists()


def test_two_processes_give_the_same_outputs(fold_files, tmp_path):
    one = run(fold_files, tmp_path, cache_dir=None, jobs=1)
    two = run(fold_files, tmp_path, cache_dir=None, jobs=2)
    pd.testing.assert_frame_equal(one.per_sample, two.per_sample)


def test_missing_samples_and_files_are_named(fold_files, tmp_path):
    paths, references = fold_files
    refs = {"val": references["val"], "test": {**references["test"], "t9": ["a"]}}
    with pytest.raises(ValueError, match="1 test samples are not in"):
        late_fusion.run(paths["omr"], paths["a2s"], refs, TRAIN, lm_order=2, jobs=1, progress=False)
    with pytest.raises(ValueError, match="a2s posteriors of split 'val' are missing"):
        late_fusion.run(paths["omr"], {**paths["a2s"], "val": tmp_path / "nope.npz"}, references, TRAIN,
                        lm_order=2, jobs=1, progress=False)


# ---------------------------------------------------------------------------------------------------------------
# lattice cache


def count_decodes(monkeypatch, log):
    """Make every WordGraphDecoder.decode append a line to ``log`` (a file: forked workers count too)."""
    from mtlnb.camera_primus.decoding.search import WordGraphDecoder

    original = WordGraphDecoder.decode

    def decode(self, logp):
        with open(log, "a") as f:
            f.write(f"{np.asarray(logp).shape[0]}\n")
        return original(self, logp)

    monkeypatch.setattr(WordGraphDecoder, "decode", decode)
    return lambda: len(log.read_text().splitlines()) if log.exists() else 0


def test_lattice_round_trip_is_exact(fold_files, tmp_path):
    from mtlnb.camera_primus.fusion import methods as fusion
    from mtlnb.camera_primus.decoding.search import WordGraphDecoder

    paths, _ = fold_files
    lm = NGramLM(order=2).fit(TRAIN, vocabulary=V)
    with load_posteriors(paths["omr"]["test"]) as po, load_posteriors(paths["a2s"]["test"]) as pa:
        omr = {sid: WordGraphDecoder(V, lm).decode(po[sid]) for sid in ("t1", "t2")}
        a2s = WordGraphDecoder(V, lm).decode(pa["t1"])
    hand = Lattice.from_arcs(V, [(0, 1, "a", -1.0, -0.5), (0, 1, "b", -0.2, -2.0), (1, 2, None, 0.0, 0.0)])
    for ids, lats in ((["t1", "t2"], list(omr.values())), (["h"], [hand])):  # searched, and hand-built (no config)
        f = tmp_path / f"shard-{len(ids)}.npz"
        lattice_store.save_lattices(f, "k", ids, lats)
        with lattice_store.LatticeShard(f) as shard:
            assert shard.ids == ids and shard.key == "k"
            back = shard.lattices()
        for sid, lat in zip(ids, lats):
            b = back[sid]
            for name in lattice_store._LATTICE_ARRAYS:
                a, c = getattr(lat, name), getattr(b, name)
                assert a.dtype == c.dtype and np.array_equal(a, c), name
            assert (b.vocabulary, b.num_nodes, b.num_frames, b.config) == (lat.vocabulary, lat.num_nodes,
                                                                           lat.num_frames, lat.config)
            assert b.best_path() == lat.best_path() and b.best_path(2.5) == lat.best_path(2.5)
            np.testing.assert_array_equal(b.arc_posteriors(), lat.arc_posteriors())
    assert omr["t1"].config is not None and omr["t1"].num_arcs > 2  # a real search, not a trivial chain
    # a fusion output from the stored OMR lattice equals the one from the decoded lattice, for every method
    with lattice_store.LatticeShard(tmp_path / "shard-2.npz") as shard:
        stored = shard["t1"]
    for name in fusion.METHODS:
        alpha = 0.5 if name in fusion.USES_ALPHA else None
        assert fusion.METHODS[name](stored, a2s, alpha) == fusion.METHODS[name](omr["t1"], a2s, alpha), name
    with pytest.raises(ValueError, match="1 lattices"):
        lattice_store.save_lattices(tmp_path / "x.npz", "k", ["a", "b"], [hand])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        lattice_store.LatticeShard(tmp_path / "bad.npz")


def test_lattice_cache_is_shared_between_pairs(fold_files, tmp_path, monkeypatch):
    paths, references = fold_files
    decodes = count_decodes(monkeypatch, tmp_path / "decodes.log")
    plain = run(fold_files, tmp_path, cache_dir=None)
    assert decodes() == 2 * 3  # both modalities of v1, t1, t2
    lattices = tmp_path / "lattices"
    first = run(fold_files, tmp_path, cache_dir=tmp_path / "pair1", lattice_cache_dir=lattices)
    assert decodes() == 2 * 6
    pd.testing.assert_frame_equal(plain.per_sample, first.per_sample)
    # one shard per modality and split (3 samples, shard_size 64), each with its settings
    assert len(list(lattices.glob("*/shard-*.npz"))) == 4 and len(list(lattices.glob("*/settings.json"))) == 4
    # "another scenario": another OMR posteriors file (a copy, so another stamp), the same A2S network
    other = tmp_path / "omr_s2"
    other.mkdir()
    omr2 = {s: other / f.name for s, f in paths["omr"].items()}
    for s in omr2:
        omr2[s].write_bytes(paths["omr"][s].read_bytes())
    second = late_fusion.run(omr2, paths["a2s"], references, TRAIN, lm_order=2, alphas=(0.0, 0.5, 1.0),
                             cache_dir=tmp_path / "pair2", lattice_cache_dir=lattices, jobs=1, progress=False)
    assert decodes() == 2 * 6 + 3  # only the new OMR's graphs: every A2S graph came from the lattice cache
    pd.testing.assert_frame_equal(plain.per_sample, second.per_sample)
    # no result shards, every lattice stored (also read by forked workers): nothing decoded, same outputs
    third = run(fold_files, tmp_path, cache_dir=None, lattice_cache_dir=lattices, jobs=2)
    assert decodes() == 2 * 6 + 3
    pd.testing.assert_frame_equal(plain.per_sample, third.per_sample)
    # a retrained A2S (new modification time) makes its stored test graphs stale; a damaged shard is decoded again
    st = os.stat(paths["a2s"]["test"])
    os.utime(paths["a2s"]["test"], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    omr_val = next(f.parent for f in lattices.glob("*/settings.json")
                   if io.read_json(f)["posteriors"]["path"] == str(paths["omr"]["val"].resolve()))
    (shard,) = omr_val.glob("shard-*.npz")
    shard.write_bytes(shard.read_bytes()[:100])
    again = run(fold_files, tmp_path, cache_dir=None, lattice_cache_dir=lattices)
    assert decodes() == 2 * 6 + 3 + 3  # t1, t2 of the A2S test file and v1 of the OMR val file
    pd.testing.assert_frame_equal(plain.per_sample, again.per_sample)
    with lattice_store.LatticeShard(shard) as restored:
        assert restored.ids == ["v1"]


def test_fold_posteriors_refuses_to_train_when_told(tmp_path):
    class Study:
        def model_dir(self, fold, name):
            d = tmp_path / f"fold{fold}" / name
            d.mkdir(parents=True, exist_ok=True)
            return d

    with pytest.raises(ValueError, match="omr posteriors of fold 0 are missing"):
        late_fusion.fold_posteriors(Study(), 0)


# ---------------------------------------------------------------------------------------------------------------
# LM order


def test_order_selection_prefers_the_order_that_predicts_validation_best():
    # after "a" comes c if "b" preceded it and b if "c" did: a bigram cannot know (P = 1/2 each), a trigram can
    train = [list("bacab"), list("cabac")] * 10
    lm, table = select_lm(train, [list("bacab")], max_order=3)
    assert lm.order == 3
    ppl = table.set_index("order").val_perplexity
    assert ppl[3] < ppl[2]
    assert table.set_index("order").chosen.tolist() == [False, True]
    fixed, table = select_lm(train, [list("bacab")], max_order=3, config=LateFusionConfig(order_selection="fixed"))
    assert fixed.order == 3 and table.order.tolist() == [3]


def test_kneser_ney_failure_falls_back_to_a_lower_order():
    # every trigram of this corpus occurs once or twice, so its count-of-counts n3 is 0: Eq. 26 is undefined at
    # order 3 (the baseline's experience on small scenarios); order 2 estimates fine
    train = [list("fe"), list("fd"), list("fcafcc"), list("cddcb"), list("afd"), list("af")]
    cfg = LateFusionConfig(smoothing="kneser_ney", order_selection="fixed")
    lm, table = select_lm(train, [list("fd")], max_order=3, config=cfg)
    assert lm.order == 2
    row = table.set_index("order").loc[3]
    assert "order 3" in row.error and math.isnan(row.val_perplexity) and not row.chosen


def test_profiles_get_the_baseline_beams_except_smoke():
    from mtlnb import profiles

    assert LateFusionConfig.for_profile(profiles.get_profile("mini")).decoder.beam == 15.0  # the baseline's
    smoke = LateFusionConfig.for_profile(profiles.get_profile("smoke"), readoff="faithful")
    assert (smoke.decoder == late_fusion.DecoderConfig(beam=1.0, lattice_beam=1.0, max_active=4)
            and smoke.readoff == "faithful")


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="readoff"):
        LateFusionConfig(readoff="kaldi")
    with pytest.raises(ValueError, match="methods"):
        LateFusionConfig(methods=("mbr",))
    with pytest.raises(ValueError, match="scale_grid"):
        LateFusionConfig(scale_grid=(0.0,))
    with pytest.raises(ValueError, match="penalty_grid"):
        LateFusionConfig(penalty_grid=())


# ---------------------------------------------------------------------------------------------------------------
# one sample


@pytest.mark.parametrize(
    "hyp, ref, expected",
    [
        ("a b c", "a b c", "a b c"),
        ("a x c", "a b c", "a [x≠b] c"),  # one substitution
        ("a b c d", "a b c", "a b c [+d]"),  # one insertion at the end
        ("a c", "a b c", "a [-b] c"),  # one deletion
        ("", "a b", "[-a] [-b]"),
        ("x", "", "[+x]"),
    ],
)
def test_mark_differences(hyp, ref, expected):
    assert mark_differences(hyp.split(), ref.split()) == expected


def test_sample_outputs_and_example_choice(fold_files, tmp_path):
    r = run(fold_files, tmp_path, config=LateFusionConfig(readoff="faithful"))
    # faithful read-off: OMR's best path on t1 is the LM's "a b", A2S's "a c": the two differ only on t1
    assert late_fusion.pick_example(r) == "t1"
    table = late_fusion.sample_outputs(r, "t1", alpha=0.5)
    assert table.loc["reference", "output (errors marked)"] == "a c"
    assert table.loc["best_path_omr", "output (errors marked)"] == "a [b≠c]"
    assert table.loc["best_path_omr", "errors"] == 1
    assert "lattice_combination (α=0.5)" in table.index
    lat = r.lattices("t1")
    assert lat["omr"].best_path() == ["a", "b"]  # rescaled to the run's read-off scale (here 1.0)


def test_drawings_keep_what_they_are_asked_to():
    import matplotlib

    matplotlib.use("Agg")
    lat = Lattice.from_paths(V, [(["a", "b"], 0.7), (["c", "b"], 0.3)])
    # each path is its own chain of 3 arcs (a, b, end); only the 0.7 chain passes the threshold
    ax = figures.draw_word_graph(lat, threshold=0.5)
    assert len(ax.patches) == 3
    ax = figures.draw_word_graph(lat, threshold=0.1)
    assert len(ax.patches) == 6
    cn = [[(EPS, 1.0)], [("a", 0.7), ("c", 0.3)], [(EPS, 1.0)], [("b", 1.0)], [(EPS, 0.995), ("a", 0.005)]]
    # shown: the two symbol bins (the pure ε slots hidden) and the 0.995 ε bin; 0.005 < min_posterior
    fig = figures.draw_confusion_networks({"OMR": cn}, min_posterior=0.01)
    assert len(fig.axes[0].texts) == 4
    with pytest.raises(ValueError, match="no arc"):
        figures.draw_word_graph(lat, threshold=0.99)
    # short neighbouring arcs: their labels stack in lanes instead of overwriting one another
    crowded = Lattice.from_paths(V, [(["a", "b"], 0.4), (["c", "b"], 0.3), (["a", "c"], 0.2), (["b", "a"], 0.1)])
    ax = figures.draw_word_graph(crowded, threshold=0.05)
    renderer = ax.figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == 12 and not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert all(ax.get_ylim()[0] <= t.get_position()[1] <= ax.get_ylim()[1] for t in ax.texts)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_select_lm_once_fits_each_lm_once(monkeypatch):
    calls = []
    real = late_fusion.select_lm
    monkeypatch.setattr(late_fusion, "select_lm", lambda *a, **k: calls.append(a) or real(*a, **k))
    train, val = [["a", "b", "a"], ["b", "a"]], [["a", "b"]]
    lm, orders = late_fusion.select_lm_once(train, val, 2, ["a", "b"])
    again, orders2 = late_fusion.select_lm_once(train, val, 2, ["a", "b"])
    assert len(calls) == 1 and again is lm and orders2.equals(orders) and orders2 is not orders
    late_fusion.select_lm_once(train + [["b"]], val, 2, ["a", "b"])  # other transcripts: another fit
    late_fusion.select_lm_once(train, val, 1, ["a", "b"])  # another order
    assert len(calls) == 3


# ---------------------------------------------------------------------------------------------------------------
# what the pipeline reads from the profile and the networks stage


def test_profile_decoder_takes_only_the_beams_a_profile_sets():
    from mtlnb import profiles

    assert late_fusion.profile_decoder(profiles.get_profile("paper").fusion) == late_fusion.DecoderConfig()
    smoke = profiles.get_profile("smoke").fusion
    assert late_fusion.profile_decoder(smoke) == late_fusion.DecoderConfig(
        beam=smoke.decoder_beam, lattice_beam=smoke.decoder_lattice_beam, max_active=smoke.decoder_max_active)
    only_beam = profiles.FusionProfile(decoder_beam=3.0)
    assert late_fusion.profile_decoder(only_beam) == late_fusion.DecoderConfig(beam=3.0)


def test_fold_posteriors_names_the_run_and_where_it_is_made(tmp_path):
    class Study:
        def model_dir(self, fold, name):
            d = tmp_path / f"fold{fold}" / name
            d.mkdir(parents=True, exist_ok=True)
            return d

    study = Study()
    for name in ("omr", "gradspsa"):
        for split in ("val", "test"):
            (study.model_dir(1, name) / f"posteriors_{split}.npz").write_bytes(b"")
    paths = late_fusion.fold_posteriors(study, 1, "omr", "gradspsa")
    assert paths["a2s"]["test"] == tmp_path / "fold1" / "gradspsa" / "posteriors_test.npz"
    (tmp_path / "fold1" / "gradspsa" / "posteriors_val.npz").unlink()
    with pytest.raises(ValueError, match=r"gradspsa posteriors of fold 1 are missing .*\(posteriors_val.npz\).*"
                                         r"notebook 03.*ensure_run\(study, fold, 'gradspsa'\)"):
        late_fusion.fold_posteriors(study, 1, "omr", "gradspsa")
    with pytest.raises(ValueError, match=r"omr_s4 posteriors .* notebook 05"):
        late_fusion.fold_posteriors(study, 1, "omr_s4", "gradspsa")


def test_ser_over_alpha_figure_draws_a_line_per_alpha_method(fold_files, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = run(fold_files, tmp_path)
    fig = figures.plot_ser_over_alpha(r.ser, title="t")
    ax = fig.axes[0]
    with_alpha = r.ser[r.ser.alpha.notna()].method.nunique()
    without = int(r.ser.alpha.isna().sum())
    assert len(ax.lines) == with_alpha + without and ax.get_title(loc="left") == "t"
    plt.close("all")
