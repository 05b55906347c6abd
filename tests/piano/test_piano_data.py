"""The spectrogram + target cache and the 11-frame sample datasets, on a small hand-made MAESTRO-layout folder."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pandas as pd
import pretty_midi
import pytest
import soundfile as sf
import torch

from mtlnb.piano import spectrogram
from mtlnb.piano import maestro, data as pd_, targets as piano_targets


def write_piece(root, name, seconds, sr, channels, seed):
    """A MIDI file with a few notes and a pedal ramp, and sine-tone audio of the same length."""
    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    for k in range(int(seconds * 4)):
        start = k * 0.25
        piano.notes.append(pretty_midi.Note(int(rng.integers(30, 100)), int(rng.integers(40, 90)), start, start + 0.2))
    piano.control_changes = [pretty_midi.ControlChange(64, v, 0.5 + 0.01 * i) for i, v in enumerate(range(0, 128, 8))]
    pm.instruments.append(piano)
    (root / "2020").mkdir(parents=True, exist_ok=True)
    pm.write(str(root / "2020" / f"{name}.midi"))
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * (200 + 100 * seed) * t)
    sf.write(root / "2020" / f"{name}.wav", np.stack([y] * channels, axis=1), sr)
    return dict(canonical_composer="Test", canonical_title=name, year=2020, midi_filename=f"2020/{name}.midi",
                audio_filename=f"2020/{name}.wav", duration=seconds)


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "maestro"
    rows = [dict(write_piece(root, "a", 2.0, 44100, 1, 0), split="train"),
            dict(write_piece(root, "b", 1.5, 48000, 2, 1), split="train"),  # MAESTRO's rate: resampled
            dict(write_piece(root, "c", 1.0, 44100, 1, 2), split="test")]
    pd.DataFrame(rows).to_csv(root / "maestro-v3.0.0.csv", index=False)
    return root


@pytest.fixture
def cache(dataset, tmp_path):
    return pd_.build_cache(dataset, tmp_path / "cache", progress=False)


def test_cache_holds_spectrogram_and_targets(cache, dataset):
    assert [(p.id, p.split, p.n_frames) for p in cache.pieces] == [("a", "train", 100), ("b", "train", 75),
                                                                  ("c", "test", 50)]
    assert cache.n_frames("train") == 175 and cache.left_out == {}
    for piece in maestro.pieces(dataset):
        spec = cache.spectrogram(piece.id)
        assert isinstance(spec, np.memmap) and not spec.flags.writeable
        np.testing.assert_array_equal(spec, spectrogram.semilog_spectrogram(maestro.load_audio(piece.audio_path)))
        expected = piano_targets.midi_targets(piece.midi_path, len(spec))
        got = cache.targets(piece.id)
        for name in piano_targets.TARGET_NAMES:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert 0 < cache.targets("a")["sustain"].max() <= 1  # the pedal ramp is there


def test_pack_unpack_roundtrip():
    rng = np.random.default_rng(0)
    enc = {n: rng.integers(0, 128, (5, 1 if n == "sustain" else 88)).astype(np.uint8)
           for n in piano_targets.TARGET_NAMES}
    packed = pd_.pack_targets(enc)
    assert packed.shape == (5, 353)
    back = pd_.unpack_targets(packed)
    for n in enc:
        np.testing.assert_array_equal(back[n], enc[n])


def test_context_window_pads_with_zeros():
    spec = np.arange(8, dtype=np.float32).reshape(4, 2) + 1  # rows [1,2], [3,4], [5,6], [7,8]
    np.testing.assert_array_equal(pd_.context_window(spec, 0, 3), [[0, 0], [1, 2], [3, 4]])
    np.testing.assert_array_equal(pd_.context_window(spec, 3, 5), [[3, 4], [5, 6], [7, 8], [0, 0], [0, 0]])
    np.testing.assert_array_equal(pd_.context_window(spec, 1, 3), spec[0:3])
    np.testing.assert_array_equal(pd_.context_window(spec, 1, 11)[4:8], spec)
    windows = pd_.context_windows(spec, 3)
    assert windows.shape == (4, 3, 2)
    for t in range(4):
        np.testing.assert_array_equal(windows[t], pd_.context_window(spec, t, 3))
    with pytest.raises(ValueError, match="odd"):
        pd_.context_window(spec, 0, 4)
    with pytest.raises(IndexError):
        pd_.context_window(spec, 4, 3)


def test_map_style_dataset(cache):
    ds = pd_.PianoFrames(cache, split="train")
    assert len(ds) == 175
    x, y = ds[100]  # piece b, frame 0
    assert x.shape == (11, 144) and x.dtype == torch.float32
    assert {k: tuple(v.shape) for k, v in y.items()} == {"onsets": (88,), "frames": (88,), "offsets": (88,),
                                                         "velocity": (88,), "sustain": (1,)}
    spec_b = cache.spectrogram("b")
    np.testing.assert_array_equal(x.numpy(), pd_.context_window(spec_b, 0))
    assert x[:5].abs().sum() == 0  # five frames of silence before the piece
    for name in piano_targets.TARGET_NAMES:
        np.testing.assert_array_equal(y[name].numpy(), cache.targets("b")[name][0])
    np.testing.assert_array_equal(ds[-1][0].numpy(), pd_.context_window(spec_b, 74))
    with pytest.raises(IndexError):
        ds[175]


def test_stream_is_seeded_and_uniform(cache):
    def draw(seed, **kw):
        return [b for b in pd_.PianoFrameStream(cache, "train", n_samples=200, batch_size=32, seed=seed, **kw)]

    a, b, c = draw(0), draw(0), draw(1)
    assert [len(x) for x, _ in a] == [32] * 6 + [8]
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(a, b))
    assert not torch.equal(a[0][0], c[0][0])
    # every batch row is the window and targets of some training frame (sine audio repeats windows: any match)
    ds = pd_.PianoFrames(cache, "train")
    windows = np.concatenate([pd_.context_windows(cache.spectrogram(p)) for p in ("a", "b")])
    frames = torch.stack([ds[i][1]["frames"] for i in range(len(ds))])
    x, y = a[0]
    for row in range(8):
        match = np.flatnonzero((windows == x[row].numpy()).all(axis=(1, 2)))
        assert any(torch.equal(y["frames"][row], frames[i]) for i in match)
    singles = list(pd_.PianoFrameStream(cache, "train", n_samples=10, seed=0))
    assert len(singles) == 10 and singles[0][0].shape == (11, 144)


def test_stream_in_order_visits_every_frame_once(cache):
    stream = pd_.PianoFrameStream(cache, split=None, shuffle=False, batch_size=64)
    xs = torch.cat([x for x, _ in stream])
    ds = pd_.PianoFrames(cache)
    assert len(xs) == len(ds) == 225
    for i in (0, 99, 100, 174, 175, 224):
        assert torch.equal(xs[i], ds[i][0])


def test_stream_with_dataloader_workers(cache):
    stream = pd_.PianoFrameStream(cache, "train", n_samples=100, batch_size=16, seed=3)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
    batches = list(loader)
    assert sum(len(x) for x, _ in batches) == 100
    again = list(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2))
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(batches, again))


def test_memory_stays_flat_while_streaming(tmp_path):
    """A 50,000-frame piece (29 MB of spectrogram) streams with a Python heap of a few batches: memory maps."""
    n = 50_000
    folder = tmp_path / "big" / "p"
    folder.mkdir(parents=True)
    spec = np.lib.format.open_memmap(folder / "spectrogram.npy", "w+", np.float32, (n, 144))
    spec[:] = np.arange(n, dtype=np.float32)[:, None]  # row t holds t: windows reveal their frame
    spec.flush()
    packed = np.lib.format.open_memmap(folder / "targets.npy", "w+", np.uint8, (n, 353))
    packed[:, 352] = np.arange(n) % 128
    packed.flush()
    del spec, packed
    cache = pd_.PianoCache(tmp_path / "big", tmp_path, pd_.SETTINGS, [pd_.CachedPiece("p", "train", n)])
    stream = pd_.PianoFrameStream(cache, "train", n_samples=3000, batch_size=64, seed=0)
    tracemalloc.start()
    try:
        for x, y in stream:
            centre = x[:, 5, 0]
            assert torch.equal(y["sustain"][:, 0], (centre % 128) / 127)  # targets belong to the window's frame
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, peak  # far below the 29 MB piece (one batch of windows is 0.4 MB)
    maps = next(iter(stream.reader._open.values()))
    assert isinstance(maps[0], np.memmap) and isinstance(maps[1], np.memmap)


def test_stale_settings_and_sources(cache, dataset, tmp_path):
    other = pd_.PianoCacheSettings(sustain_threshold=65)
    with pytest.raises(pd_.StaleCacheError, match="sustain_threshold"):
        pd_.open_cache(cache.root, settings=other)
    with pytest.raises(pd_.StaleCacheError, match="other settings"):
        pd_.build_cache(dataset, cache.root, settings=other, progress=False)
    assert pd_.default_cache_dir(dataset, other) != pd_.default_cache_dir(dataset)

    untouched = (cache.root / "a" / "spectrogram.npy").stat().st_mtime_ns
    midi = dataset / "2020" / "c.midi"
    os.utime(midi, ns=(midi.stat().st_atime_ns, midi.stat().st_mtime_ns + 10**9))
    with pytest.raises(pd_.StaleCacheError, match="changed"):
        pd_.open_cache(cache.root)
    rebuilt = pd_.build_cache(dataset, cache.root, progress=False)  # recomputes c only
    assert (cache.root / "a" / "spectrogram.npy").stat().st_mtime_ns == untouched
    assert [p.id for p in rebuilt.pieces] == ["a", "b", "c"]
    assert [p.id for p in pd_.open_cache(cache.root, split="test").pieces] == ["c"]


def test_unreadable_piece_is_left_out(dataset, tmp_path):
    (dataset / "2020" / "b.wav").write_bytes(b"RIFF broken")
    c = pd_.build_cache(dataset, tmp_path / "cache2", progress=False)
    assert [p.id for p in c.pieces] == ["a", "c"]
    assert "b.wav" in c.left_out["b"]


def test_mismatched_frame_rates_are_rejected():
    with pytest.raises(ValueError, match="frame rate"):
        pd_.PianoCacheSettings(targets=piano_targets.TargetConfig(fps=100.0))


def test_parallel_build_gives_the_same_cache(cache, dataset, tmp_path):
    twin = pd_.build_cache(dataset, tmp_path / "parallel", jobs=2, progress=False)
    assert twin.pieces == cache.pieces
    for p in cache.pieces:
        np.testing.assert_array_equal(twin.spectrogram(p.id), cache.spectrogram(p.id))
        np.testing.assert_array_equal(twin.packed_targets(p.id), cache.packed_targets(p.id))
