"""Transcribing one's own score: a smoke-size fold (OMR and A2S, one epoch each, on six hand-made samples) whose
output layers are then biased towards one symbol each, so that the OMR reads one note and the A2S hears another:
every output file can be checked against known symbols, and the fusion's α visibly picks between them."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import cv2
import pretty_midi
import pytest
import torch

from mtlnb import cli
from mtlnb.camera_primus import transcribe as tr
from mtlnb.camera_primus.corpus.datasets import Vocabulary
from mtlnb.camera_primus.networks import runs
from mtlnb.camera_primus.study import PrimusStudy
from mtlnb.profiles import get_profile

from tiny_corpus import TINY_LABELS, write_tiny_sample

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LABELS = [*TINY_LABELS.values(),
          "clef-G2\tkeySignature-CM\ttimeSignature-2/4\tnote-D5_quarter\tnote-C5_quarter\tbarline\t",
          "clef-G2\tkeySignature-CM\ttimeSignature-2/4\tnote-C5_quarter\tnote-C5_quarter\tbarline\t"]
BIAS = 30.0  # added to one class's output bias: that symbol wins every frame by e^30 over any other


def _bias_towards(run_dir: Path, symbol: str) -> None:
    """Make the run's ``best.pt`` emit ``symbol`` at every frame (greedy and word-graph output: that one symbol)."""
    vocabulary = Vocabulary.load(run_dir / runs.VOCABULARY)
    state = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)
    (key,) = [k for k, v in state["model"].items() if k.endswith("out.bias") and v.shape == (len(vocabulary) + 1,)]
    state["model"][key][vocabulary.index[symbol]] += BIAS
    torch.save(state, run_dir / "best.pt")


@pytest.fixture(scope="module")
def fold(tmp_path_factory):
    """``(fold folder, OMR symbol, A2S symbol)`` of a smoke study in a temporary data root."""
    root = tmp_path_factory.mktemp("transcribe") / "primus-smoke"
    for i, label in enumerate(LABELS):
        write_tiny_sample(root / "Corpus", f"s{i}", label, seed=i % 4)
    study = PrimusStudy(get_profile("smoke"), root, root, synthetic=True, jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa: the tiny tones are shorter than some CQT filters
        runs.train_omr(study, 0, epochs=1, progress=False)
        runs.train_a2s(study, 0, epochs=1, progress=False)
    fold_dir = root / "models" / "fold0"
    notes = [s for s in Vocabulary.load(fold_dir / "omr" / runs.VOCABULARY).symbols if s.startswith("note-")]
    omr_symbol, a2s_symbol = notes[0], notes[1]
    _bias_towards(fold_dir / "omr", omr_symbol)
    _bias_towards(fold_dir / "a2s", a2s_symbol)
    return fold_dir, omr_symbol, a2s_symbol


def _inputs(fold_dir: Path) -> tuple[Path, Path]:
    sample = fold_dir.parent.parent / "Corpus" / "s0"
    return sample / "s0_distorted.jpg", sample / "s0.wav"


def test_image_and_recording_give_three_transcriptions_in_every_format(fold, tmp_path):
    fold_dir, omr_symbol, a2s_symbol = fold
    image, audio = _inputs(fold_dir)
    result = tr.transcribe(image, audio, run=fold_dir, out=tmp_path / "out")
    assert result.tokens["omr"] == [omr_symbol] and result.tokens["a2s"] == [a2s_symbol]
    assert result.tokens["fused"] in ([omr_symbol], [a2s_symbol])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in result.files())
    assert len(result.files()) == 3 * 4 + 1
    for name, tokens in result.tokens.items():
        out = tmp_path / "out"
        assert (out / f"{name}.semantic").read_text() == "".join(f"{t}\t" for t in tokens) + "\n"
        midi = pretty_midi.PrettyMIDI(str(out / f"{name}.mid"))
        pitch = pretty_midi.note_name_to_number(tokens[0].split("-")[1].split("_")[0])
        assert [n.pitch for n in midi.instruments[0].notes] == [pitch]
        assert "<mei" in (out / f"{name}.mei").read_text()
        png = cv2.imread(str(out / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        assert png is not None and png.shape[1] > png.shape[0] and png.min() < 128  # a staff, with ink
    summary = json.loads((tmp_path / "out" / tr.SUMMARY).read_text())
    assert (summary["profile"], summary["fold"], summary["alpha"]) == ("smoke", 0, 0.5)
    assert summary["transcriptions"]["omr"]["greedy"] == [omr_symbol]
    assert "Kaldi's defaults" in summary["readoff_source"]  # notebook 04 never fused this fold


def test_alpha_weighs_the_image_against_the_recording(fold, tmp_path):
    fold_dir, omr_symbol, a2s_symbol = fold
    image, audio = _inputs(fold_dir)
    assert tr.transcribe(image, audio, run=fold_dir, alpha=1.0, out=tmp_path / "a1").tokens["fused"] == [omr_symbol]
    assert tr.transcribe(image, audio, run=fold_dir, alpha=0.0, out=tmp_path / "a0").tokens["fused"] == [a2s_symbol]
    with pytest.raises(ValueError, match="alpha must be in"):
        tr.transcribe(image, audio, run=fold_dir, alpha=1.5, out=tmp_path / "bad")


def test_an_image_alone_is_transcribed_by_the_omr_alone(fold, tmp_path):
    fold_dir, omr_symbol, _ = fold
    image, _ = _inputs(fold_dir)
    result = tr.transcribe(image, run=fold_dir, out=tmp_path / "out")
    assert result.tokens == {"omr": [omr_symbol]}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "omr.mei", "omr.mid", "omr.png", "omr.semantic", tr.SUMMARY]


def test_unreadable_inputs_are_named(fold, tmp_path):
    fold_dir, _, _ = fold
    image, audio = _inputs(fold_dir)
    not_an_image = tmp_path / "photo.jpg"
    not_an_image.write_bytes(b"this is no JPEG")
    with pytest.raises(ValueError, match=f"{not_an_image}: not a readable image"):
        tr.transcribe(not_an_image, run=fold_dir, out=tmp_path / "o")
    not_audio = tmp_path / "take1.wav"
    not_audio.write_text("this is no WAV")
    with pytest.raises(ValueError, match=f"{not_audio}: not a readable recording"):
        tr.transcribe(image, not_audio, run=fold_dir, out=tmp_path / "o")
    with pytest.raises(ValueError, match="no such audio file"):
        tr.transcribe(image, tmp_path / "missing.wav", run=fold_dir, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()  # nothing written when an input is wrong


def test_a_fold_without_the_needed_network_or_with_two_vocabularies_is_refused(fold, tmp_path):
    fold_dir, _, _ = fold
    image, audio = _inputs(fold_dir)
    study_copy = tmp_path / "primus-smoke"
    shutil.copytree(fold_dir.parent.parent / "folds", study_copy / "folds")
    shutil.copytree(fold_dir.parent.parent / "Corpus", study_copy / "Corpus")
    only_omr = study_copy / "models" / "fold0"
    shutil.copytree(fold_dir / "omr", only_omr / "omr")
    tr.transcribe(image, run=only_omr, out=tmp_path / "ok")  # the image alone needs only the OMR
    with pytest.raises(ValueError, match=r"has no trained A2S network .*a2s/best.pt is missing.*notebook 03"):
        tr.transcribe(image, audio, run=only_omr, out=tmp_path / "o")
    with pytest.raises(ValueError, match="one network's training run; pass its parent"):
        tr.transcribe(image, run=only_omr / "omr", out=tmp_path / "o")

    shutil.copytree(fold_dir / "a2s", only_omr / "a2s")
    vocab_path = only_omr / "a2s" / runs.VOCABULARY
    symbols = list(Vocabulary.load(vocab_path).symbols)
    symbols[-1] = "note-B9_whole"  # same size (the weights still load), one other symbol
    Vocabulary(tuple(symbols)).save(vocab_path)
    with pytest.raises(ValueError, match=rf"vocabulary mismatch: {only_omr / 'omr' / 'vocabulary.json'} and "
                                         rf"{vocab_path}"):
        tr.transcribe(image, audio, run=only_omr, out=tmp_path / "o")


def test_a_multirest_before_any_time_signature_is_left_out_of_the_midi_only(tmp_path):
    tokens = ["clef-G2", "multirest-2", "timeSignature-2/4", "note-C5_half", "barline"]
    entry = tr.write_transcription(tmp_path, "x", tokens)
    assert (tmp_path / "x.semantic").read_text().split("\t")[:5] == tokens
    assert entry["notes"] == ["multirest-2 at position 1 (before any time signature) left out of the MIDI"]
    assert [n.pitch for n in pretty_midi.PrettyMIDI(str(tmp_path / "x.mid")).instruments[0].notes] == [72]


def test_the_command_line_transcribes_and_names_a_missing_study(fold, tmp_path, capsys, monkeypatch):
    fold_dir, omr_symbol, a2s_symbol = fold
    image, audio = _inputs(fold_dir)
    assert cli.main(["transcribe", "--image", str(image), "--audio", str(audio), "--run", str(fold_dir),
                     "--out", str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out
    assert f"omr     1 symbols: {omr_symbol}" in printed and f"a2s     1 symbols: {a2s_symbol}" in printed
    assert "13 files in" in printed
    monkeypatch.setenv("MTLNB_DATA", str(tmp_path / "empty"))
    assert cli.main(["transcribe", "--image", str(image), "--profile", "smoke", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no such fold folder" in err and str(tmp_path / "empty") in err
    assert cli.main(["transcribe", "--image", str(image), "--out", str(tmp_path / "o")]) == 2
    assert "--run FOLD_DIR, or --profile" in capsys.readouterr().err
