"""Committed notebook outputs: cleaning (bars, paths, kernel spec) and refreshing them from a reproduce run."""

from __future__ import annotations

import json

import pytest

from mtlnb import cli, notebook_outputs as nbo
from mtlnb.core import io


def _code(outputs, source="x = 1"):
    return {"cell_type": "code", "execution_count": 7, "metadata": {"execution": {"t": 1}, "tags": []},
            "outputs": outputs, "source": [source]}


def _stream(name, text):
    return {"name": name, "output_type": "stream", "text": text}


def _notebook(cells, kernel="Python 3"):
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": kernel, "language": "python",
                                                        "name": "python3"}, "papermill": {"x": 1}},
            "nbformat": 4, "nbformat_minor": 5}


def test_clean_drops_frozen_bars_but_keeps_what_stderr_says():
    bars = _stream("stderr", ["\r", "epoch 1/3:   0%|          | 0/2 [00:00<?, ?it/s]"])
    mixed = _stream("stderr", "fit:  50%|#####     | 1/2 [00:01<00:01, 1.0it/s]\rdone: diverged at epoch 2\n")
    empty = _stream("stderr", ["\n", "  "])
    nb = nbo.clean(_notebook([_code([bars, mixed, empty, _stream("stdout", "SER 31.2 %\n")])]))
    outputs = nb["cells"][0]["outputs"]
    assert [o["name"] for o in outputs] == ["stderr", "stdout"]
    assert "".join(outputs[0]["text"]) == "done: diverged at epoch 2\n"


def test_clean_drops_path_results_and_volatile_state_and_sets_the_kernel_spec():
    path = {"output_type": "execute_result", "execution_count": 3, "metadata": {},
            "data": {"text/plain": ["PosixPath('/tmp/x/fig/01_cqt.png')"]}}
    table = {"output_type": "execute_result", "execution_count": 4, "metadata": {},
             "data": {"text/plain": ["   a\n0  1"], "text/html": ["<table></table>"]}}
    injected = {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "outputs": [],
                "source": ["profile = 'mini'"], "execution_count": 1}
    widget = {"output_type": "display_data", "metadata": {},
              "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "ab"},
                       "text/plain": ["corpus:   0%|          | 0/40"]}}
    nb = nbo.clean(_notebook([injected, _code([path, widget, table])]))
    assert len(nb["cells"]) == 1
    cell = nb["cells"][0]
    assert cell["execution_count"] is None and cell["outputs"] == [dict(table, execution_count=None)]
    assert "execution" not in cell["metadata"] and "papermill" not in nb["metadata"]
    assert nb["metadata"]["kernelspec"] == nbo.KERNELSPEC
    assert nbo.render(nbo.clean(json.loads(nbo.render(nb)))) == nbo.render(nb)  # idempotent


def _run_folder(tmp_path, statuses):
    repo = tmp_path / "clone"
    run_dir = repo / "runs" / "mini-20261207-120000"
    run_dir.mkdir(parents=True)
    entries = []
    for name, status in statuses.items():
        text = f"corpus: {repo}/data/primus-mini/Corpus\n"
        io.write_text(run_dir / name, nbo.render(_notebook([_code([_stream("stdout", text)])])))
        entries.append({"notebook": name, "status": status, "seconds": 12.5})
    io.write_json(run_dir / "index.json", {"profile": "mini", "commit": "abc123", "started": "2026-12-07 12:00:00",
                                           "wall_seconds": 5400.0, "notebooks": entries})
    return run_dir


def test_refresh_copies_finished_notebooks_cleaned_with_the_run_in_their_metadata(tmp_path):
    run_dir = _run_folder(tmp_path, {"01_a.ipynb": "ok", "02_b.ipynb": "failed", "03_c.ipynb": "ok"})
    committed = tmp_path / "notebooks"
    committed.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb"):  # 03 is not a committed notebook: not created
        io.write_text(committed / name, nbo.render(_notebook([_code([])])))
    before_02 = (committed / "02_b.ipynb").read_text()
    assert cli.main(["refresh-notebooks", str(run_dir), "--notebooks", str(committed)]) == 0
    nb = json.loads((committed / "01_a.ipynb").read_text())
    assert nb["metadata"]["mtlnb"] == {"profile": "mini", "commit": "abc123", "date": "2026-12-07 12:00:00",
                                       "run_wall_seconds": 5400.0, "notebook_seconds": 12.5}
    assert "".join(nb["cells"][0]["outputs"][0]["text"]) == "corpus: data/primus-mini/Corpus\n"
    assert (committed / "02_b.ipynb").read_text() == before_02  # failed there: kept
    assert not (committed / "03_c.ipynb").exists()


def test_refresh_refuses_a_folder_that_is_not_a_run_or_has_nothing_finished(tmp_path):
    with pytest.raises(ValueError, match="no index.json"):
        nbo.refresh(tmp_path, tmp_path)
    run_dir = _run_folder(tmp_path, {"01_a.ipynb": "failed"})
    with pytest.raises(ValueError, match="nothing refreshed"):
        nbo.refresh(run_dir, tmp_path)

