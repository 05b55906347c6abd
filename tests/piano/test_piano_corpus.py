"""``python -m mtlnb piano-corpus``: synthetic performances in the MAESTRO layout, resumable, with clear errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from mtlnb import cli
from mtlnb.piano import maestro, performance


def run(*argv: str) -> int:
    return cli.main(["piano-corpus", *argv])


def test_writes_a_dataset_the_maestro_reader_loads(tmp_path, capsys):
    out = tmp_path / "piano"
    assert run("--out", str(out), "--n", "2", "--seconds", "4", "--seed", "3", "--jobs", "1") == 0
    assert f"{out}: 2 pianist performances" in capsys.readouterr().out
    meta = maestro.read_metadata(out, check_files=True)
    assert list(meta["id"]) == [performance.piece_id(0), performance.piece_id(1)]
    assert set(meta["split"]) <= set(maestro.SPLITS)
    for piece in maestro.pieces(out):
        info = sf.info(piece.audio_path)
        assert info.samplerate == maestro.SAMPLE_RATE and info.channels == 1
        assert info.frames / info.samplerate == pytest.approx(piece.duration, abs=1e-5)
        notes = maestro.midi_to_notes(piece.midi_path)
        assert len(notes) > 10 and notes[:, 1].max() < piece.duration
        assert len(maestro.sustain_events(piece.midi_path)) > 0
        assert np.abs(maestro.load_audio(piece.audio_path)).max() > 0.01
    # The same pieces as the library writes for this seed: the CLI adds nothing of its own to the music.
    pm = performance.compose(3, 1, 4.0)
    written = maestro.midi_to_notes(out / "synthetic" / f"{performance.piece_id(1)}.midi", apply_sustain=False)
    assert len(written) == len(pm.instruments[0].notes)


def test_resumes_and_refuses_to_mix_settings(tmp_path, capsys):
    out = tmp_path / "piano"
    args = ("--out", str(out), "--n", "2", "--seconds", "3", "--jobs", "1", "--generator", "simple")
    assert run(*args) == 0
    files = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "synthetic").iterdir()}
    (out / "synthetic" / f"{performance.piece_id(1)}.wav").unlink()
    assert run(*args) == 0  # the missing audio comes back, byte for byte; the rest is not touched
    again = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "synthetic").iterdir()}
    assert again[f"{performance.piece_id(1)}.wav"][1] == files[f"{performance.piece_id(1)}.wav"][1]
    assert again[f"{performance.piece_id(0)}.wav"] == files[f"{performance.piece_id(0)}.wav"]
    capsys.readouterr()
    assert run("--out", str(out), "--n", "2", "--seconds", "3", "--jobs", "1") == 2  # the pianist generator now
    assert "other settings" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (("--n", "0"), "n_pieces must be >= 1"),
    (("--n", "1", "--seconds", "0"), "seconds must be positive"),
    (("--n", "1", "--jobs", "-2"), "workers must be >= 1"),
])
def test_bad_arguments_are_one_error_line(tmp_path, capsys, argv, message):
    assert run("--out", str(tmp_path / "piano"), *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_out_must_be_a_folder(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert run("--out", str(target), "--n", "1") == 2
    assert "is a file" in capsys.readouterr().err


def test_generator_choices_are_the_named_configurations():
    sub = next(a for a in cli.build_parser()._subparsers._group_actions if a.dest == "command")
    choices = next(a.choices for a in sub.choices["piano-corpus"]._actions if a.dest == "generator")
    assert sorted(choices) == sorted(performance.CONFIGS)


def test_help_through_python_m():
    done = subprocess.run([sys.executable, "-m", "mtlnb", "piano-corpus", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--seconds" in done.stdout and "MAESTRO layout" in done.stdout


def test_listed_in_the_top_level_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "piano-corpus" in capsys.readouterr().out
    assert "piano-corpus" in cli.__doc__
