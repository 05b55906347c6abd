"""The reproduction driver: tracks side by side, thread shares, failure semantics, the run index.

The unit tests run tiny notebooks written into ``tmp_path``; each writes, from inside its kernel, when it started and
ended and the thread settings it saw into ``out/<notebook>.json``, so that order, overlap and threads are checked
from the notebooks' own records, never from wall-clock speed.  Notebooks that must overlap wait for each other
(by a marker file, or by the driver's own ``index.json``), so the tests cannot pass by luck and cannot hang (a wait
gives up after a minute and fails its notebook).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from mtlnb import reproduce as rp

PARAMS = 'profile = ""\nthreads = 0\njobs = 0\n'
PRELUDE = '''\
import json, os, time
from pathlib import Path
from mtlnb import reproduce
T0 = time.time()
OUT = Path({out!r})
NAME = os.environ["MTLNB_NOTEBOOK"]
RUN = Path(os.environ["MTLNB_RUN_DIR"])
(OUT / f"{{NAME}}.started").write_text("")


def status(notebook):
    try:
        rows = json.loads((RUN / "index.json").read_text())["notebooks"]
    except (OSError, ValueError):
        return None
    return {{r["notebook"]: r["status"] for r in rows}}.get(notebook)


def wait_for(what, check, timeout=60.0):
    t = time.time()
    while not check():
        if time.time() - t > timeout:
            raise TimeoutError(f"{{NAME}} waited {{timeout}} s for {{what}}")
        time.sleep(0.05)


def done():
    (OUT / f"{{NAME}}.json").write_text(json.dumps({{
        "start": T0, "end": time.time(), "profile": profile, "threads": threads, "jobs": jobs,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS")}}))
'''


def write_notebook(folder: Path, name: str, body: str) -> Path:
    """``folder/name.ipynb``: a parameters cell, the prelude above, then ``body``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(PRELUDE.format(out=str(folder / "out"))),
                nbformat.v4.new_code_cell(body)]
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def seen(folder: Path, name: str) -> dict:
    return json.loads((folder / "out" / f"{name}.json").read_text())


def index(runs: Path) -> dict:
    (run_dir,) = runs.iterdir()
    return json.loads((run_dir / "index.json").read_text())


def statuses(idx: dict) -> dict:
    return {Path(e["notebook"]).stem: e["status"] for e in idx["notebooks"]}


@pytest.fixture
def nbdir(tmp_path, monkeypatch):
    """An empty notebook folder, with the run folders and figures moved under ``tmp_path``."""
    monkeypatch.setenv("MTLNB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MTLNB_FIGURES", str(tmp_path / "figures"))
    folder = tmp_path / "nbs"
    (folder / "out").mkdir(parents=True)
    return folder


# --------------------------------------------------------------------------------------------- no kernels needed


def paths(*names: str) -> list[Path]:
    return [Path(f"{n}.ipynb") for n in names]


def test_tracks_cut_at_start_and_only_one_notebook():
    nbs = paths("01_a", "02_b", "03_c", "04_d", "05_e", "06_f", "07_g", "08_h")
    cut = rp.tracks(rp.select(nbs, start="03"))
    assert {k: [p.stem for p in v] for k, v in cut.items()} == {"gradspsa": ["03_c", "04_d", "05_e"],
                                                                "piano": ["06_f", "07_g", "08_h"]}
    assert rp.tracks(rp.select(nbs, start="07")) == {"piano": paths("07_g", "08_h")}
    assert rp.select(nbs, only="05") == paths("05_e")
    with pytest.raises(ValueError, match="'11'"):
        rp.select(nbs, only="11")


def test_the_optional_track_runs_only_when_named():
    nbs = paths("01_a", "02_b", "06_c", "09_beyond")
    assert [p.stem for p in rp.select(nbs)] == ["01_a", "02_b", "06_c"]
    assert [p.stem for p in rp.select(nbs, start="02")] == ["02_b", "06_c"]
    assert [p.stem for p in rp.select(nbs, start="09")] == ["09_beyond"]
    assert [p.stem for p in rp.select(nbs, only="09")] == ["09_beyond"]
    assert rp.track_of(Path("09_beyond.ipynb")) == "beyond" and "beyond" in rp.OPTIONAL


def test_a_notebook_in_no_track_is_its_own_track_after_the_others():
    grouped = rp.tracks(paths("11_y", "06_f", "10_x", "01_a"))
    assert list(grouped) == ["gradspsa", "piano", "10_x", "11_y"]
    assert rp.track_of(Path("10_x.ipynb")) == "10_x"


def test_a_second_run_never_reuses_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLNB_RUNS", str(tmp_path))
    first = rp.new_run_dir("smoke")
    (first / "index.md").write_text("earlier run")
    others = [rp.new_run_dir("smoke") for _ in range(3)]  # the same second, most likely: suffixed -1, -2, …
    assert len({first, *others}) == 4 and all(p.is_dir() for p in others)
    assert (first / "index.md").read_text() == "earlier run"


def test_record_writes_one_file_per_notebook_and_the_index_merges_them(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLNB_FIGURES", str(tmp_path / "figures"))
    monkeypatch.delenv(rp.RUN_DIR_ENV, raising=False)
    rp.record("ignored", 1)  # outside a run: nothing to write, no error
    monkeypatch.setenv(rp.RUN_DIR_ENV, str(tmp_path))
    for nb, key, value in [("06_f", "06 b", [1, 2]), ("01_a", "01 a", 0.5), ("06_f", "06 c", "x"), ("01_a", "z", 1),
                           ("06_f", "z", 6)]:
        monkeypatch.setenv(rp.NOTEBOOK_ENV, nb)
        rp.record(key, value)
    assert sorted(p.name for p in (tmp_path / "key_numbers").iterdir()) == ["01_a.json", "06_f.json"]
    entries = [{"notebook": "01_a.ipynb", "status": "ok"}, {"notebook": "06_f.ipynb", "status": "ok"}]
    rp.write_index(tmp_path, "smoke", entries)
    kn = json.loads((tmp_path / "index.json").read_text())["key_numbers"]
    assert kn == {"01 a": 0.5, "06 b": [1, 2], "06 c": "x", "z": 6}  # a name recorded twice: the later notebook's
    assert "| 06 b | [1, 2] |" in (tmp_path / "index.md").read_text()


# ------------------------------------------------------------------------------------------ tiny notebooks, run


def test_tracks_side_by_side_share_the_cores(nbdir, capsys):
    # From 02 on: 02_a and 06_c each wait for the other (06_c until 02_a has started, 02_a until the driver has seen
    # 06_c end); 03_b then starts with the piano track finished, and 10_z (no track) after both tracks.
    write_notebook(nbdir, "01_x", "done()")
    write_notebook(nbdir, "02_a", 'reproduce.record("02 a", 1)\n'
                                  'wait_for("06_c ok", lambda: status("06_c.ipynb") == "ok")\ndone()')
    write_notebook(nbdir, "03_b", 'reproduce.record("03 b", 2.5)\ndone()')
    write_notebook(nbdir, "06_c", 'wait_for("02_a started", (OUT / "02_a.started").exists)\n'
                                  'reproduce.record("06 c", [6, "c"])\ndone()')
    write_notebook(nbdir, "10_z", "done()")
    assert rp.reproduce("smoke", start="02", notebook_dir=nbdir, parallel=True) == 0
    assert not (nbdir / "out" / "01_x.started").exists()
    a, b, c, z = (seen(nbdir, n) for n in ("02_a", "03_b", "06_c", "10_z"))
    assert a["start"] < c["end"] and c["start"] < a["end"], "the two tracks did not overlap"
    assert a["end"] < b["start"], "03_b started before 02_a ended"
    assert z["start"] > max(b["end"], c["end"]), "10_z (no track) started before the tracks had finished"
    assert {x["profile"] for x in (a, b, c, z)} == {"smoke"}

    idx = index(nbdir.parent / "runs")
    assert statuses(idx) == {"02_a": "ok", "03_b": "ok", "06_c": "ok", "10_z": "ok"}
    assert [e["track"] for e in idx["notebooks"]] == ["gradspsa", "gradspsa", "piano", "10_z"]
    assert idx["key_numbers"] == {"02 a": 1, "03 b": 2.5, "06 c": [6, "c"]}
    assert idx["parallel"] is True and idx["wall_seconds"] > 0
    assert all(e["start"] and e["end"] and e["seconds"] > 0 for e in idx["notebooks"])
    out = capsys.readouterr().out
    for e in idx["notebooks"]:
        assert len(re.findall(rf"{e['notebook']} \[{e['track']}\] started, \d+ threads?", out)) == 1
        assert len(re.findall(rf"{e['notebook']} \[{e['track']}\] ok in", out)) == 1

    # threads: cores // 2 each while both tracks ran, every core once one had finished
    cores = rp.available_cores()
    share = {"02_a": max(1, cores // 2), "06_c": max(1, cores // 2), "03_b": cores, "10_z": cores}
    assert {Path(e["notebook"]).stem: e["threads"] for e in idx["notebooks"]} == share
    for name, x in zip(("02_a", "03_b", "06_c", "10_z"), (a, b, c, z)):
        assert x["OMP_NUM_THREADS"] == x["MKL_NUM_THREADS"] == str(share[name]), name
        assert x["threads"] == x["jobs"] == share[name], name  # the notebook's own parameters, where declared
    if cores < 2:
        pytest.skip(f"{cores} core: the shares above were all 1, so one thread each vs all cores is not exercised")


def test_a_failure_stops_its_track_and_lets_the_other_finish_its_notebook(nbdir, capsys):
    write_notebook(nbdir, "01_a", 'wait_for("06_c started", (OUT / "06_c.started").exists)\n'
                                  'raise RuntimeError("boom in 01")')
    write_notebook(nbdir, "02_b", "done()")
    write_notebook(nbdir, "06_c", 'wait_for("01_a failed", lambda: status("01_a.ipynb") == "failed")\n'
                                  'reproduce.record("06 c", 6)\ndone()')
    write_notebook(nbdir, "07_d", "done()")
    assert rp.reproduce("smoke", notebook_dir=nbdir, parallel=True) == 1
    err = capsys.readouterr().err
    # cell 2 of the notebook (parameters, prelude, body), the fourth executed (papermill injects the parameters)
    assert "FAILED: 01_a.ipynb, cell 2 (In [4]: wait_for(" in err and "RuntimeError: boom in 01" in err
    idx = index(nbdir.parent / "runs")
    assert statuses(idx) == {"01_a": "failed", "02_b": "not run", "06_c": "ok", "07_d": "not run"}
    assert idx["key_numbers"] == {"06 c": 6}
    assert not (nbdir / "out" / "02_b.started").exists() and not (nbdir / "out" / "07_d.started").exists()
    not_run = [e for e in idx["notebooks"] if e["status"] == "not run"]
    assert all(e["start"] is None and e["seconds"] is None for e in not_run)


def test_one_core_runs_one_after_another_with_the_notebooks_own_thread_settings(nbdir, monkeypatch):
    # one core: the default runs the notebooks in number order, across tracks, each given only `profile` (threads
    # and jobs keep the notebook's defaults) and the caller's thread variables reach the kernels untouched
    monkeypatch.setattr(rp, "available_cores", lambda: 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    write_notebook(nbdir, "01_a", "done()")
    write_notebook(nbdir, "06_c", "done()")
    assert rp.reproduce("smoke", notebook_dir=nbdir) == 0
    a, c = seen(nbdir, "01_a"), seen(nbdir, "06_c")
    assert a["end"] < c["start"]
    for x in (a, c):
        assert (x["OMP_NUM_THREADS"], x["MKL_NUM_THREADS"], x["threads"], x["jobs"]) == ("3", None, 0, 0)
    idx = index(nbdir.parent / "runs")
    assert idx["parallel"] is False and idx["cores"] == 1 and statuses(idx) == {"01_a": "ok", "06_c": "ok"}
    assert [e["threads"] for e in idx["notebooks"]] == [None, None]


# --------------------------------------------------------------------------------------------------- end to end


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("CI"), reason="end to end: all eight notebooks in smoke (minutes); CI=1 runs it")
def test_the_real_notebooks_run_side_by_side_in_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLNB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MTLNB_FIGURES", str(tmp_path / "figures"))  # the committed figures/ stay as they are
    assert rp.reproduce("smoke", parallel=True) == 0
    idx = index(tmp_path / "runs")
    assert [e["notebook"] for e in idx["notebooks"]] == [p.name for p in rp.select(rp.notebooks())]  # 09: optional
    assert len(idx["notebooks"]) == 8 and set(statuses(idx).values()) == {"ok"}


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("CI"), reason="end to end: the paper profile's dry run, every notebook at the "
                                                     "paper's shapes from nothing (~7 min); CI=1 runs it")
def test_the_paper_dry_run_runs_every_notebook_and_projects_the_paper_run(tmp_path, monkeypatch):
    for name in ("DATA", "RUNS", "FIGURES"):  # from nothing, beside nothing
        monkeypatch.setenv(f"MTLNB_{name}", str(tmp_path / name.lower()))
    assert rp.reproduce("paper-dry", parallel=True) == 0
    idx = index(tmp_path / "runs")
    assert len(idx["notebooks"]) == 8 and set(statuses(idx).values()) == {"ok"}
    projection = next((tmp_path / "runs").glob("paper-dry-*/projection.md")).read_text()
    assert "MEANINGLESS" in projection and "PROJECTED on an H100" in projection
    assert all(f"{net} " in projection for net in ("omr", "a2s", "gradspsa"))


# ------------------------------------------------------------------------------------- a real Camera-PrIMuS archive


def test_run_wide_parameters_and_environment_reach_only_the_notebooks_declaring_them(nbdir):
    body = ('import json, os\nfrom pathlib import Path\n'
            'Path({out!r}).joinpath(os.environ["MTLNB_NOTEBOOK"] + ".json").write_text(json.dumps('
            '{{"corpus_dir": globals().get("corpus_dir"), "ref": os.environ.get("MTLNB_REFERENCE")}}))')
    for name, params in (("01_a", 'profile = ""\ncorpus_dir = ""\n'), ("06_b", 'profile = ""\n')):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
        cell = nbformat.v4.new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        nb.cells = [cell, nbformat.v4.new_code_cell(body.format(out=str(nbdir / "out")))]
        nbformat.write(nb, nbdir / f"{name}.ipynb")
    assert rp.reproduce("smoke", notebook_dir=nbdir, parallel=False, parameters={"corpus_dir": "/the/archive"},
                        env={"MTLNB_REFERENCE": "/the/lists"}, summary={"corpus": "/the/archive"}) == 0
    a, b = (json.loads((nbdir / "out" / f"{n}.json").read_text()) for n in ("01_a", "06_b"))
    assert a == {"corpus_dir": "/the/archive", "ref": "/the/lists"}
    assert b == {"corpus_dir": None, "ref": "/the/lists"}  # 06 declares no corpus_dir: papermill is not given one
    assert index(nbdir.parent / "runs")["corpus"] == "/the/archive"


def _fold_lists(folder: Path, ids: list[str], seed: int = 7) -> Path:
    from mtlnb.camera_primus.corpus import primus

    primus.write_folds(folder / "ScenarioX", primus.make_folds(ids, 5, seed=seed))
    return folder / "ScenarioX"


def _tiny_ids(corpus: Path) -> list[str]:
    """The ids of ``tiny_corpus`` with a fifth sample added (five folds need five ids)."""
    from tiny_corpus import TINY_LABELS, write_tiny_sample

    if not (corpus / "Corpus" / "t4").exists():
        write_tiny_sample(corpus / "Corpus", "t4", TINY_LABELS["t0"], seed=4)
    return sorted(p.name for p in (corpus / "Corpus").iterdir())


def test_the_ids_come_from_the_list_then_beside_the_corpus_then_the_test_folds(tiny_corpus, tmp_path):
    ids = _tiny_ids(tiny_corpus)
    assert rp.resolve_ids(tiny_corpus, None, None) == (ids, "every sample folder", False)
    lists = _fold_lists(tmp_path / "lists", ids[:3] + ids[3:])
    got, source, write = rp.resolve_ids(tiny_corpus, None, lists.parent)  # the folder above ScenarioX/ works too
    assert (got, write) == (ids, True) and source == f"the test folds of {lists}"
    listed = tmp_path / "clean.dat"
    listed.write_text("\n".join(ids[:3]) + "\n")
    assert rp.resolve_ids(tiny_corpus, listed, None) == (ids[:3], str(listed), True)
    (tiny_corpus / rp.IDS_FILE).write_text("\n".join(ids[1:]) + "\n")
    assert rp.resolve_ids(tiny_corpus, None, lists)[:2] == (ids[1:], str(tiny_corpus / rp.IDS_FILE))
    with pytest.raises(ValueError, match=r"clean_samples.dat exists and lists other ids than .*clean.dat"):
        rp.resolve_ids(tiny_corpus, listed, None)


def test_ids_without_a_sample_folder_and_folds_of_other_ids_are_refused(tiny_corpus, tmp_path):
    ids = _tiny_ids(tiny_corpus)
    listed = tmp_path / "clean.dat"
    listed.write_text("\n".join(ids + ["211010522-1_1_1"]) + "\n")
    with pytest.raises(ValueError, match=r"1 of the 6 ids .* no sample folder in .*Corpus, e.g. \['211010522-1_1_1'\]"):
        rp.resolve_ids(tiny_corpus, listed, None)
    lists = _fold_lists(tmp_path / "lists", ids + ["x9"])
    with pytest.raises(ValueError, match=r"cover 6 ids, the id list 5: 1 only in the folds \(e.g. \['x9'\]\)"):
        rp.check_folds(lists, ids)
    assert rp.check_folds(lists, ids + ["x9"]) == lists
    with pytest.raises(FileNotFoundError, match="not the baseline's fold lists"):
        rp.check_folds(tmp_path, ids)


def test_the_given_lists_are_copied_into_a_reference_that_keeps_the_users_other_files(tmp_path, monkeypatch):
    own = tmp_path / "own"
    for folder in ("primus/samples/a", "primus/folds/ScenarioX", "maestro"):
        (own / folder).mkdir(parents=True)
    (own / "primus" / "folds" / "ScenarioX" / "test_gt_fold0.dat").write_text("stale\n")
    monkeypatch.setenv("MTLNB_REFERENCE", str(own))
    lists = _fold_lists(tmp_path / "lists", [f"i{k}" for k in range(10)])
    (lists.parent / "Scenario3").mkdir()
    (lists.parent / "Scenario3" / "train_gt_fold0.dat").write_text("i1\n")
    ref = rp.reference_with_folds(lists, tmp_path / "study" / "reference")
    assert (ref / "primus/folds/ScenarioX/test_gt_fold0.dat").read_text() == (lists / "test_gt_fold0.dat").read_text()
    assert (ref / "primus/folds/Scenario3/train_gt_fold0.dat").read_text() == "i1\n"
    assert (ref / "primus/samples").resolve() == (own / "primus/samples").resolve()
    assert (ref / "maestro").is_symlink() and not (ref / "primus/folds").is_symlink()
    assert rp.reference_with_folds(lists, ref) == ref  # made again over an earlier one


def real_layout_archive(folder: Path, n: int, seed: int = 5) -> list[str]:
    """A Camera-PrIMuS-layout archive as the real one is: ``folder/Corpus/<id>/`` with real-style ids
    (``110000007-1_1_1``) and the archive's files, and no audio, no build markers, no manifest."""
    import shutil

    from mtlnb.camera_primus.corpus.synthetic import build_corpus

    built = folder.parent / f"{folder.name}-built"
    build_corpus(built, n, seed=seed, jobs=1, progress=False)
    ids = []
    for i, old in enumerate(sorted(p.name for p in (built / "Corpus").iterdir())):
        new = f"{110000000 + 7 * i}-1_1_1"
        (folder / "Corpus" / new).mkdir(parents=True)
        for f in (built / "Corpus" / old).iterdir():
            if f.suffix != ".wav":
                shutil.copyfile(f, folder / "Corpus" / new / f.name.replace(old, new))
        ids.append(new)
    shutil.rmtree(built)
    return ids


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("CI"), reason="end to end: an archive built, notebooks 01-05 in smoke "
                                                     "(minutes); CI=1 runs it")
def test_a_real_layout_archive_without_audio_runs_with_the_baselines_fold_lists(tmp_path, monkeypatch):
    import shutil

    from mtlnb.camera_primus.corpus import primus
    from mtlnb.profiles import get_profile

    for var, sub in (("MTLNB_DATA", "data"), ("MTLNB_RUNS", "runs"), ("MTLNB_FIGURES", "figures")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    archive = tmp_path / "camera-primus"
    ids = real_layout_archive(archive, 15)
    lists = _fold_lists(tmp_path / "late-fusion", ids)
    clean = tmp_path / "late-fusion" / "clean_samples.dat"
    clean.write_text("\n".join(ids) + "\n")
    nbs = tmp_path / "notebooks"  # the GradSPSA track: the piano track reads nothing of the archive
    nbs.mkdir()
    for nb in rp.notebooks()[:5]:
        shutil.copyfile(nb, nbs / nb.name)
    assert [p.name[:2] for p in rp.notebooks(nbs)] == ["01", "02", "03", "04", "05"]

    assert rp.reproduce_corpus(archive, folds=lists, ids=clean, profile="smoke", notebook_dir=nbs) == 0
    idx = index(tmp_path / "runs")
    assert set(statuses(idx).values()) == {"ok"} and len(idx["notebooks"]) == 5
    assert (idx["corpus"], idx["ids"], idx["folds_source"]) == (str(archive), 15, "baseline")
    assert all((archive / "Corpus" / sid / f"{sid}.wav").is_file() for sid in ids)
    assert primus.read_id_list(archive / "clean_samples.dat") == ids
    study = tmp_path / "data" / "primus-real-smoke"
    used, given = primus.load_folds(study / "folds"), primus.load_folds(lists)
    for u, g in zip(used, given):  # the notebooks trained on the given folds (or the profile's subset of them)
        assert set(u.train) <= set(g.train) and set(u.val) <= set(g.val) and set(u.test) <= set(g.test)
    assert set(used[0].test) == set(given[0].test) or get_profile("smoke").corpus.subset_fraction < 1
    assert list(study.glob("features-*/manifest.json")) and (study / "models" / "fold0" / "a2s" / "best.pt").is_file()
