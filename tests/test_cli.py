"""The command line: every subcommand parses and explains itself, errors come back as one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mtlnb import cli

SUBCOMMANDS = ("corpus", "features", "render-audio", "reproduce", "sim2real", "transcribe", "piano-corpus")


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([])
    assert e.value.code == 2
    assert "required" in capsys.readouterr().err


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_each_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m mtlnb {command}")


def test_top_level_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in out


def test_python_dash_m_runs_the_same_parser():
    done = subprocess.run([sys.executable, "-m", "mtlnb", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert "reproduce" in done.stdout


def test_features_of_a_missing_corpus_is_one_error_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert cli.main(["features", "--corpus", str(missing), "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing) in err


def test_reproduce_with_an_unknown_notebook_is_one_error_line(capsys):
    assert cli.main(["reproduce", "--profile", "smoke", "--only", "99"]) == 2
    assert "99" in capsys.readouterr().err


def test_unknown_profile_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["reproduce", "--profile", "huge"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.usefixtures("one_torch_thread")
def test_corpus_then_features_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert cli.main(["corpus", "--out", str(out), "--n", "2", "--seed", "3", "--jobs", "1"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["n_requested"], manifest["complete"], manifest["failed"]) == (2, True, {})
    samples = sorted((out / "Corpus").iterdir())
    assert len(samples) == 2 and all((s / f"{s.name}.semantic").is_file() for s in samples)
    assert "2/2 samples ready" in capsys.readouterr().out
    cache = tmp_path / "cache"
    assert cli.main(["features", "--corpus", str(out), "--cache", str(cache), "--jobs", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"{cache}: 2 samples cached" in printed


def test_reproduce_and_transcribe_help_say_what_they_need_and_write(capsys):
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--help"])
    out = capsys.readouterr().out
    for needed in ("--corpus", "--folds", "--ids", "Calvo-Zaragoza & Rizo", "ScenarioX", "clean_samples.dat",
                   "runs/<profile>-<time>/"):
        assert needed in out, needed
    with pytest.raises(SystemExit):
        cli.main(["transcribe", "--help"])
    out = capsys.readouterr().out
    for needed in ("--image PHOTO", "--audio RECORDING", "--run FOLD_DIR", "--alpha", "ONE staff", ".semantic",
                   ".mid", ".mei", ".png", "transcription.json"):
        assert needed in out, needed


def test_fold_lists_without_an_archive_and_a_missing_archive_are_one_error_line(tmp_path, capsys):
    assert cli.main(["reproduce", "--profile", "smoke", "--folds", str(tmp_path)]) == 2
    assert "give it with --corpus" in capsys.readouterr().err
    missing = tmp_path / "camera-primus"
    assert cli.main(["reproduce", "--profile", "smoke", "--corpus", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing) in err and "Corpus/" in err


def test_transcribe_of_a_missing_photo_names_it(tmp_path, capsys):
    photo = tmp_path / "my-score.jpg"
    assert cli.main(["transcribe", "--image", str(photo), "--profile", "smoke", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{photo}: no such image file" in err


def test_camera_names_are_the_distortion_configs():
    from mtlnb import cli
    from mtlnb.camera_primus.corpus import distortion

    assert set(cli.CAMERAS) == set(distortion.CONFIGS) and cli.CAMERAS[0] == distortion.DEFAULT_CAMERA
