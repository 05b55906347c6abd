"""The five framewise targets of the piano study (Kelz et al. 2019, §III and Fig. 2d).

From the notes of :func:`mtlnb.piano.maestro.midi_to_notes` and the pedal curve of
:func:`mtlnb.piano.maestro.sustain_events`, at the spectrogram's 50 frames per second:

============  ===========  =================================================================================
name          shape        value
============  ===========  =================================================================================
``onsets``    (T, 88)      1 at the onset frame of each note, then widened by a maximum filter of width 3
``frames``    (T, 88)      1 from the onset frame to the offset frame, inclusive
``offsets``   (T, 88)      1 at the offset frame, then widened by the maximum filter
``velocity``  (T, 88)      velocity / 127 from the onset to the offset frame, then widened by the maximum filter
``sustain``   (T, 1)       CC64 / 127, the pedal value in effect at each frame (continuous, half-pedal kept)
============  ===========  =================================================================================

Column k is MIDI pitch 21 + k (A0 .. C8); all values float32 in [0, 1].  A time t falls on frame
``round(t · fps)`` (NumPy rounding: exact halves go to the even frame).  Where the paper is silent:

- A note still sounding at the last frame has no offset mark; notes starting at or after frame T are dropped.
- Times before 0 (an excerpt cut from a longer performance by shifting its notes) are clipped at frame 0 the same
  way: a note that started before the excerpt and still sounds in it has no onset mark but its frames (and
  velocity) from frame 0 to its offset; a note that ended before frame 0 is dropped; the pedal at frame 0 is the
  last message at or before it.
- Where two notes of one key meet on a frame (the cut at a re-strike), the later note's velocity wins.
- Several pedal messages on one frame: the last one wins; before the first message the pedal is up (0).

Targets are built as small integers (:func:`encode_targets`: 0/1 and 0..127, uint8) and scaled by
:func:`decode_targets`; the cache stores the compact integer form and decodes it identically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d

from mtlnb.piano import maestro

TARGET_NAMES = ("onsets", "frames", "offsets", "velocity", "sustain")
SCALED = ("velocity", "sustain")  # stored as 0..127, divided by 127 when decoded


@dataclass(frozen=True)
class TargetConfig:
    """How notes and pedal become frame targets."""

    fps: float = 50.0  # frames per second: the spectrogram's (44,100 / 882)
    max_filter: int = 3  # width of the time-axis maximum filter on onsets, offsets and velocity (paper §III)
    lowest_pitch: int = 21  # MIDI pitch of column 0: A0, the piano's lowest key
    n_keys: int = 88  # the Disklavier's keys

    @property
    def widths(self) -> dict[str, int]:
        """Maximum-filter width per target (1 = none): the paper widens only the sparse ones."""
        w = int(self.max_filter)
        return {"onsets": w, "frames": 1, "offsets": w, "velocity": w, "sustain": 1}


TARGETS = TargetConfig()


def _frame_index(times: np.ndarray, fps: float) -> np.ndarray:
    return np.rint(np.asarray(times, dtype=np.float64) * fps).astype(np.int64)


def encode_targets(notes: np.ndarray, sustain: np.ndarray | None, n_frames: int,
                   config: TargetConfig = TARGETS) -> dict[str, np.ndarray]:
    """The five targets as integers: the exact, compact form that :func:`decode_targets` scales to [0, 1].

    Parameters
    ----------
    notes : ndarray (n_notes, 4)
        onset (s), offset (s), MIDI pitch, velocity (1..127), as :func:`mtlnb.piano.maestro.midi_to_notes` returns.
    sustain : ndarray (n_events, 2) or None
        time (s), CC64 value (0..127) of each pedal message, time non-decreasing; None or empty: pedal up.
    n_frames : int
        T, the number of spectrogram frames (:func:`mtlnb.piano.spectrogram.semilog_n_frames` of the audio).
    config : TargetConfig

    Returns
    -------
    dict of ndarray uint8
        ``onsets``, ``frames``, ``offsets`` (T, 88) in {0, 1}; ``velocity`` (T, 88) and ``sustain`` (T, 1) in 0..127.
    """
    notes = np.asarray(notes, dtype=np.float64)
    if notes.ndim != 2 or notes.shape[1] != 4:
        raise ValueError("encode_targets: notes must be (n_notes, 4) onset, offset, pitch, velocity; "
                         f"got shape {notes.shape}")
    if n_frames < 0:
        raise ValueError(f"encode_targets: n_frames must be >= 0, got {n_frames}")
    if len(notes):
        if not np.all(np.isfinite(notes)):
            raise ValueError("encode_targets: notes contain NaN or infinite values")
        if np.any(notes[:, 1] < notes[:, 0]):
            i = int(np.argmax(notes[:, 1] < notes[:, 0]))
            raise ValueError(f"encode_targets: note {i} ends ({notes[i, 1]} s) before it starts ({notes[i, 0]} s)")
        keys = notes[:, 2] - config.lowest_pitch
        if np.any((keys < 0) | (keys >= config.n_keys)):
            bad = notes[(keys < 0) | (keys >= config.n_keys), 2][0]
            raise ValueError(f"encode_targets: pitch {bad:g} is outside the piano's "
                             f"{config.lowest_pitch}..{config.lowest_pitch + config.n_keys - 1}")
        if np.any((notes[:, 3] < 0) | (notes[:, 3] > 127)):
            raise ValueError("encode_targets: velocities must lie in 0..127")
    shape = (int(n_frames), config.n_keys)
    out = {name: np.zeros(shape, dtype=np.uint8) for name in ("onsets", "frames", "offsets", "velocity")}
    start, end = _frame_index(notes[:, 0], config.fps), _frame_index(notes[:, 1], config.fps)
    order = np.argsort(start, kind="stable")  # later onsets overwrite earlier ones where they meet
    for i in order:
        s, e, k = start[i], end[i], int(notes[i, 2]) - config.lowest_pitch
        if s >= n_frames or e < 0:  # wholly after the last frame, or before the first
            continue
        if s >= 0:
            out["onsets"][s, k] = 1
        s = max(s, 0)  # a note sounding into the excerpt: no onset, its frames from frame 0
        out["frames"][s:e + 1, k] = 1
        out["velocity"][s:e + 1, k] = int(round(notes[i, 3]))
        if e < n_frames:
            out["offsets"][e, k] = 1
    out["sustain"] = sustain_frames(sustain, n_frames, config.fps)
    for name, width in config.widths.items():
        if width > 1 and n_frames:
            out[name] = maximum_filter1d(out[name], size=width, axis=0, mode="constant", cval=0)
    return {name: out[name] for name in TARGET_NAMES}


def sustain_frames(sustain: np.ndarray | None, n_frames: int, fps: float = TARGETS.fps) -> np.ndarray:
    """The CC64 value in effect at each frame (sample and hold of the message frames).

    Returns
    -------
    ndarray uint8 (n_frames, 1)
        0..127; 0 before the first message.
    """
    out = np.zeros((int(n_frames), 1), dtype=np.uint8)
    if sustain is None or len(sustain) == 0 or n_frames == 0:
        return out
    sustain = np.asarray(sustain, dtype=np.float64)
    if sustain.ndim != 2 or sustain.shape[1] < 2:
        raise ValueError(f"sustain_frames: expected (n_events, 2) time, value; got shape {sustain.shape}")
    if np.any(np.diff(sustain[:, 0]) < 0):
        raise ValueError("sustain_frames: pedal message times must be non-decreasing")
    if np.any((sustain[:, 1] < 0) | (sustain[:, 1] > 127)):
        raise ValueError("sustain_frames: CC64 values must lie in 0..127")
    frames = _frame_index(sustain[:, 0], fps)
    last = np.searchsorted(frames, np.arange(n_frames), side="right") - 1  # last message at or before each frame
    out[last >= 0, 0] = sustain[last[last >= 0], 1].astype(np.uint8)
    return out


def decode_targets(encoded: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Integer targets → float32 in [0, 1]: binary targets as they are, velocity and sustain divided by 127.

    Accepts any array-like per target (e.g. read-only memory maps or a slice of rows) and returns new arrays.
    """
    missing = [n for n in TARGET_NAMES if n not in encoded]
    if missing:
        raise ValueError(f"decode_targets: missing target(s) {', '.join(missing)}")
    # A true division (not a multiplication by 1/127) so that 127 decodes to exactly 1.
    return {n: np.asarray(encoded[n], dtype=np.float32) / np.float32(127) if n in SCALED
            else np.asarray(encoded[n], dtype=np.float32) for n in TARGET_NAMES}


def frame_targets(notes: np.ndarray, sustain: np.ndarray | None, n_frames: int,
                  config: TargetConfig = TARGETS) -> dict[str, np.ndarray]:
    """The five targets, float32 in [0, 1] (see the module docstring for the layout).

    Parameters as :func:`encode_targets`.

    Returns
    -------
    dict of ndarray float32
        ``onsets``, ``frames``, ``offsets``, ``velocity`` (n_frames, 88) and ``sustain`` (n_frames, 1).
    """
    return decode_targets(encode_targets(notes, sustain, n_frames, config))


def midi_targets(path: str | os.PathLike, n_frames: int, sustain_threshold: int = 64,
                 config: TargetConfig = TARGETS) -> dict[str, np.ndarray]:
    """:func:`frame_targets` of a MIDI file (notes with the pedal applied at ``sustain_threshold``)."""
    return frame_targets(maestro.midi_to_notes(path, sustain_threshold), maestro.sustain_events(path), n_frames,
                         config)
