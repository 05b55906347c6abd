"""Where the piano study's files live per profile, and that a notebook can build them from nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from mtlnb.piano import maestro
from mtlnb import profiles
from mtlnb.piano.study import piano_study
from mtlnb.profiles import PianoProfile


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLNB_DATA", str(tmp_path))
    return tmp_path


def test_synthetic_study_builds_performances_and_cache(data_root):
    tiny = profiles.get_profile("smoke", piano=PianoProfile(n_pieces=3, seconds_per_piece=2.0, updates=2))
    study = piano_study(tiny, jobs=1)
    assert study.synthetic and study.root == data_root / "piano-smoke"
    assert study.dataset_root == study.root / "performances" and study.models_dir == study.root / "models"
    cache = study.cache(progress=False)
    assert [p.split for p in cache.pieces].count("validation") == 1 and len(cache.pieces) == 3
    assert cache.root == study.cache_dir and cache.root.parent == study.root  # not inside the performances
    assert (study.dataset_root / maestro.CSV_NAMES[0]).is_file()
    # a second call finds everything built: same pieces, nothing recomputed
    mtimes = {p.id: (cache.root / p.id / "spectrogram.npy").stat().st_mtime_ns for p in cache.pieces}
    again = study.cache(progress=False)
    assert {p.id: (again.root / p.id / "spectrogram.npy").stat().st_mtime_ns for p in again.pieces} == mtimes


def test_real_dataset_dir_and_paper_profile(data_root, tmp_path):
    with pytest.raises(ValueError, match="dataset_dir"):
        piano_study(profiles.get_profile("paper"))  # no synthetic stand-in for MAESTRO
    real = tmp_path / "maestro"
    real.mkdir()
    with pytest.raises(FileNotFoundError, match="maestro-v3.0.0.csv"):
        piano_study(profiles.get_profile("paper"), real)
    pd.DataFrame(columns=list(maestro.COLUMNS)).to_csv(real / "maestro-v2.0.0.csv", index=False)
    study = piano_study(profiles.get_profile("paper"), real)
    assert not study.synthetic and study.root == data_root / "piano-real-paper" and study.dataset_root == real
