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


def test_a_notebook_in_no_track_is_its_own_track_after_the_others():
    grouped = rp.tracks(paths("10_y", "06_f", "09_x", "01_a"))
    assert list(grouped) == ["gradspsa", "piano", "09_x", "10_y"]
    assert rp.track_of(Path("09_x.ipynb")) == "09_x"


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
    # 06_c end); 03_b then starts with the piano track finished, and 09_z (no track) after both tracks.
    write_notebook(nbdir, "01_x", "done()")
    write_notebook(nbdir, "02_a", 'reproduce.record("02 a", 1)\n'
                                  'wait_for("06_c ok", lambda: status("06_c.ipynb") == "ok")\ndone()')
    write_notebook(nbdir, "03_b", 'reproduce.record("03 b", 2.5)\ndone()')
    write_notebook(nbdir, "06_c", 'wait_for("02_a started", (OUT / "02_a.started").exists)\n'
                                  'reproduce.record("06 c", [6, "c"])\ndone()')
    write_notebook(nbdir, "09_z", "done()")
    assert rp.reproduce("smoke", start="02", notebook_dir=nbdir, parallel=True) == 0
    assert not (nbdir / "out" / "01_x.started").exists()
    a, b, c, z = (seen(nbdir, n) for n in ("02_a", "03_b", "06_c", "09_z"))
    assert a["start"] < c["end"] and c["start"] < a["end"], "the two tracks did not overlap"
    assert a["end"] < b["start"], "03_b started before 02_a ended"
    assert z["start"] > max(b["end"], c["end"]), "09_z (no track) started before the tracks had finished"
    assert {x["profile"] for x in (a, b, c, z)} == {"smoke"}

    idx = index(nbdir.parent / "runs")
    assert statuses(idx) == {"02_a": "ok", "03_b": "ok", "06_c": "ok", "09_z": "ok"}
    assert [e["track"] for e in idx["notebooks"]] == ["gradspsa", "gradspsa", "piano", "09_z"]
    assert idx["key_numbers"] == {"02 a": 1, "03 b": 2.5, "06 c": [6, "c"]}
    assert idx["parallel"] is True and idx["wall_seconds"] > 0
    assert all(e["start"] and e["end"] and e["seconds"] > 0 for e in idx["notebooks"])
    out = capsys.readouterr().out
    for e in idx["notebooks"]:
        assert len(re.findall(rf"{e['notebook']} \[{e['track']}\] started, \d+ threads?", out)) == 1
        assert len(re.findall(rf"{e['notebook']} \[{e['track']}\] ok in", out)) == 1

    # threads: cores // 2 each while both tracks ran, every core once one had finished
    cores = rp.available_cores()
    share = {"02_a": max(1, cores // 2), "06_c": max(1, cores // 2), "03_b": cores, "09_z": cores}
    assert {Path(e["notebook"]).stem: e["threads"] for e in idx["notebooks"]} == share
    for name, x in zip(("02_a", "03_b", "06_c", "09_z"), (a, b, c, z)):
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
    assert [e["notebook"] for e in idx["notebooks"]] == [p.name for p in rp.notebooks()]
    assert len(idx["notebooks"]) == 8 and set(statuses(idx).values()) == {"ok"}
