"""In-process FluidSynth rendering."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from mtlnb.core import synthesis


def scale(start_pitch: int, step: float = 0.5, n: int = 6) -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    for k in range(n):
        inst.notes.append(pretty_midi.Note(127, start_pitch + k, k * step, (k + 1) * step))
    pm.instruments.append(inst)
    return pm


@pytest.fixture(scope="module")
def renderer():
    try:
        r = synthesis.Renderer(22050)
    except synthesis.SynthesisError as e:
        pytest.skip(str(e))
    yield r
    r.close()


def test_length_and_range(renderer):
    audio = renderer.render(scale(60))
    assert audio.dtype == np.float32
    assert audio.shape == (round(3.0 * 22050),)  # six half-second notes end at 3.0 s, no release tail
    assert 0.005 < np.abs(audio).max() <= 1.0


def test_each_file_renders_as_if_alone(renderer):
    # A fresh synthesiser per file: the output of a file must not depend on what was rendered before it.
    first = renderer.render(scale(60))
    renderer.render(scale(40, step=0.3331))
    assert np.array_equal(first, renderer.render(scale(60)))


def test_shorter_duration_is_the_prefix_of_the_whole(renderer):
    # Events past the requested duration are not sent (a long MIDI file used to flood FluidSynth's event queue).
    whole = renderer.render(scale(60))
    head = renderer.render(scale(60), duration=1.2)
    assert head.shape == (round(1.2 * 22050),) and np.array_equal(head, whole[: head.size])


def test_pitch_is_right(renderer):
    # A4 (MIDI 69) held for a second: the spectrum's strongest peak is near 440 Hz.
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes.append(pretty_midi.Note(127, 69, 0.0, 1.0))
    pm.instruments.append(inst)
    audio = renderer.render(pm)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    peak_hz = np.argmax(spectrum) * 22050 / len(audio)
    assert abs(peak_hz - 440) < 5


def test_missing_soundfont(tmp_path):
    with pytest.raises(synthesis.SynthesisError, match="does not exist"):
        synthesis.find_soundfont(tmp_path / "nope.sf2")


def test_dynamic_sample_loading_is_bit_identical(renderer):
    # Per-file synthesisers load samples dynamically (faster); the result must equal a fully loaded one's.
    synth, sfid = renderer._new_synth(dynamic=False)
    try:
        full = renderer._play(synth, sfid, scale(55), None)
    finally:
        synth.delete()
    assert np.array_equal(renderer.render(scale(55)), full)
