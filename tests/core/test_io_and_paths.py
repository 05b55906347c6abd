"""Atomic writes (nothing half-written survives a failure) and the environment variables that move folders."""

from __future__ import annotations

import numpy as np
import pytest

from mtlnb.core import io, paths


def test_atomic_path_moves_on_success_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with io.atomic_path(target) as tmp:
        assert tmp.suffix == ".txt" and tmp.parent == target.parent  # writers that detect formats by suffix
        tmp.write_text("done")
    assert target.read_text() == "done"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "done"  # the old file is untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]  # and no temporary file is left


def test_json_and_npz_round_trip(tmp_path):
    obj = {"b": [1, 2.5, None], "a": "é"}
    io.write_json(tmp_path / "x.json", obj)
    assert io.read_json(tmp_path / "x.json") == obj
    io.write_npz(tmp_path / "x.npz", a=np.arange(3), b=np.eye(2, dtype=np.float32))
    with np.load(tmp_path / "x.npz") as z:
        assert np.array_equal(z["a"], np.arange(3)) and z["b"].dtype == np.float32


def test_hashes_are_stable_and_key_order_free(tmp_path):
    assert io.sha256_json({"a": 1, "b": 2}) == io.sha256_json({"b": 2, "a": 1})
    assert io.sha256_json({"a": 1}) != io.sha256_json({"a": 2})
    (tmp_path / "f").write_bytes(b"abc")
    assert io.sha256_file(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_environment_variables_move_the_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLNB_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("MTLNB_RUNS", str(tmp_path / "r"))
    monkeypatch.setenv("MTLNB_FIGURES", str(tmp_path / "f"))
    assert paths.data_root() == tmp_path / "d"
    assert paths.runs_root() == tmp_path / "r"
    assert paths.figures_dir("mini") == tmp_path / "f" / "mini" and (tmp_path / "f" / "mini").is_dir()


def test_reference_root_is_none_where_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLNB_REFERENCE", str(tmp_path / "absent"))
    assert paths.reference_root() is None
    monkeypatch.setenv("MTLNB_REFERENCE", str(tmp_path))
    assert paths.reference_root() == tmp_path


def test_project_root_holds_the_package():
    assert (paths.PROJECT_ROOT / "mtlnb" / "core" / "paths.py").is_file()
