"""The MAESTRO dataset's layout: metadata CSV, performance MIDI and audio.

MAESTRO v2/v3 (Hawthorne et al. 2019) is a folder holding ``maestro-v3.0.0.csv`` (or ``maestro-v2.0.0.csv``)
and the files it names, relative to that folder (``2004/MIDI-Unprocessed_...wav--1.midi`` and ``...wav``).  The
synthetic performances of :mod:`mtlnb.piano.performance` are written in the same layout, so this one reader serves both.

- :func:`read_metadata` / :func:`pieces`: the CSV, validated, with its train / validation / test split.
- :func:`load_audio`: any piece's audio as 44.1 kHz mono float32 (MAESTRO's recordings are 48 kHz stereo).
- :func:`midi_to_notes`: notes with the sustain pedal applied exactly as madmom's ``MIDIFile.sustained_notes``
  (the pipeline of the piano study's authors); :func:`sustain_events`: the raw pedal curve.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import pandas as pd
import soundfile as sf
import soxr

SAMPLE_RATE = 44100  # Hz: the piano study's audio rate (Kelz et al. resample MAESTRO's 48 kHz)
CSV_NAMES = ("maestro-v3.0.0.csv", "maestro-v2.0.0.csv")  # looked up in this order
COLUMNS = ("canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename", "duration")
SPLITS = ("train", "validation", "test")
SUSTAIN_CC = 64  # MIDI controller number of the sustain (damper) pedal


# ----------------------------------------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class Piece:
    """One performance of a MAESTRO-layout dataset."""

    id: str  # the MIDI file's name without extension: unique within MAESTRO
    split: str  # "train", "validation" or "test"
    midi_path: Path
    audio_path: Path
    duration: float  # seconds, as the CSV states it
    composer: str
    title: str
    year: int


def find_metadata(root: str | os.PathLike) -> Path:
    """The metadata CSV in ``root`` (v3 preferred over v2); ``FileNotFoundError`` naming both if neither exists."""
    root = Path(root)
    for name in CSV_NAMES:
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"{root}: no MAESTRO metadata file ({' or '.join(CSV_NAMES)})")


def read_metadata(root: str | os.PathLike, split: str | None = None, check_files: bool = False) -> pd.DataFrame:
    """The metadata table of the dataset in ``root``, optionally one split.

    Parameters
    ----------
    root : path
        Folder holding ``maestro-v3.0.0.csv`` (or v2) and the files it names.
    split : {"train", "validation", "test"}, optional
        Keep only this split.
    check_files : bool
        Also check that every named MIDI and audio file exists (a ``ValueError`` lists the first missing ones).

    Returns
    -------
    pandas.DataFrame
        The CSV's columns (:data:`COLUMNS`, in the file's order, extra columns kept) plus ``id`` (MIDI file stem),
        ``midi_path`` and ``audio_path`` (absolute :class:`~pathlib.Path`), rows in file order.
    """
    path = find_metadata(root)
    df = _read_csv(path)
    _check_cells(path, df)
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"read_metadata: split must be one of {SPLITS}, got {split!r}")
        df = df[df["split"] == split].reset_index(drop=True)
    base = path.parent.resolve()
    df["id"] = [Path(p).stem for p in df["midi_filename"]]
    if df["id"].duplicated().any():
        dup = df.loc[df["id"].duplicated(), "id"].iloc[0]
        raise ValueError(f"{path}: two rows share the MIDI file name {dup!r}; piece ids must be unique")
    df["midi_path"] = [base / p for p in df["midi_filename"]]
    df["audio_path"] = [base / p for p in df["audio_filename"]]
    if check_files:
        absent = [str(p) for p in list(df["midi_path"]) + list(df["audio_path"]) if not p.is_file()]
        if absent:
            raise ValueError(f"{path}: {len(absent)} listed file(s) are missing, e.g. {absent[:3]}")
    return df


def _read_csv(path: Path) -> pd.DataFrame:
    """The CSV as pandas reads it; ``ValueError`` naming the file for an empty, non-UTF-8 or ragged one."""
    try:
        df = pd.read_csv(path, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: empty file, expected MAESTRO's header ({', '.join(COLUMNS)}) and rows") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r})") from None
    except pd.errors.ParserError as e:
        raise ValueError(f"{path}: malformed CSV ({e})") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return df


def _check_cells(path: Path, df: pd.DataFrame) -> None:
    """``ValueError`` naming the file, line (the header is line 1) and column of the first empty or invalid cell of
    the columns mtlnb reads (a short row leaves its last cells empty)."""
    def fail(i: int, column: str, what: str) -> None:
        raise ValueError(f"{path}, line {i + 2}, column {column}: {what}")

    for column in COLUMNS:
        empty = np.flatnonzero(df[column].isna().to_numpy())
        if len(empty):
            fail(int(empty[0]), column, "empty cell")
    bad = np.flatnonzero(~df["split"].isin(SPLITS).to_numpy())
    if len(bad):
        fail(int(bad[0]), "split", f"unknown split name {df['split'].iloc[bad[0]]!r}; expected one of {SPLITS}")
    for column in ("year", "duration"):
        values = pd.to_numeric(df[column], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if len(bad):
            fail(int(bad[0]), column, f"not a number: {df[column].iloc[bad[0]]!r}")


def pieces(root: str | os.PathLike, split: str | None = None) -> list[Piece]:
    """The dataset's performances (optionally one split) as :class:`Piece` records, in CSV order."""
    df = read_metadata(root, split)
    return [
        Piece(id=r.id, split=r.split, midi_path=r.midi_path, audio_path=r.audio_path, duration=float(r.duration),
              composer=str(r.canonical_composer), title=str(r.canonical_title), year=int(r.year))
        for r in df.itertuples(index=False)
    ]


# ---------------------------------------------------------------------------------------------------------- audio


def load_audio(path: str | os.PathLike, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as mono float32 at ``sr`` Hz.

    Channels are averaged (as ``librosa.to_mono``), then the signal is resampled with soxr's high-quality
    filter when the file's rate differs: the same numbers as librosa's default ``resample(res_type="soxr_hq")``,
    called directly because librosa's first call costs ~10 s of start-up.

    Returns
    -------
    ndarray float32 (n_samples,)
        Values in about [-1, 1]; ``n_samples = ceil(frames · sr / file_rate)``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_audio: {path} does not exist")
    try:
        data, file_sr = sf.read(path, dtype="float32", always_2d=True)
    except RuntimeError as e:  # soundfile raises LibsndfileError (a RuntimeError) for unreadable files
        raise ValueError(f"load_audio: {path} is not a readable audio file ({e})") from e
    y = data.mean(axis=1, dtype=np.float32)
    if file_sr != sr:
        y = soxr.resample(y, file_sr, sr, quality="HQ")
    return np.ascontiguousarray(y, dtype=np.float32)


# ----------------------------------------------------------------------------------------------------------- MIDI


@dataclass(frozen=True)
class _MidiContent:
    notes: np.ndarray  # (N, 5) onset s, pitch, duration s, velocity, channel; madmom's order and semantics
    sustain: np.ndarray  # (K, 3) time s, value, channel of every CC64 message, in file order
    end_time: float  # time of the last MIDI message, seconds


def _read_midi(path: str | os.PathLike) -> _MidiContent:
    """Parse note and pedal messages the way madmom's MIDIFile does (times accumulated message by message).

    A note-on of an already sounding key restarts it (the earlier note-on is forgotten) and a note-off without
    a sounding note is ignored: both are madmom's rules, kept so that the notes equal its ``sustained_notes``.
    """
    try:
        midi = mido.MidiFile(os.fspath(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as e:
        raise ValueError(f"{path}: not a readable MIDI file ({e})") from e
    if midi.type == 2:
        raise ValueError(f"{path}: MIDI type 2 (asynchronous tracks) has no single time line")
    notes, pedal, sounding = [], [], {}
    now = 0.0
    for msg in midi:  # mido merges the tracks and converts delta ticks to seconds with the tempo map
        if msg.time > 0:
            now += msg.time
        if msg.type == "control_change" and msg.control == SUSTAIN_CC:
            pedal.append((now, msg.value, msg.channel))
        elif msg.type in ("note_on", "note_off"):
            key = (msg.channel, msg.note)
            if msg.type == "note_on" and msg.velocity > 0:
                sounding[key] = (now, msg.velocity)
            elif key in sounding:
                onset, velocity = sounding.pop(key)
                notes.append((onset, msg.note, now - onset, velocity, msg.channel))
    if sounding:
        warnings.warn(f"{path}: {len(sounding)} note(s) never released; dropped (as madmom does)", stacklevel=3)
    notes_arr = np.asarray(sorted(notes), dtype=np.float64).reshape(-1, 5)
    return _MidiContent(notes_arr, np.asarray(pedal, dtype=np.float64).reshape(-1, 3), now)


def _pedal_intervals(sustain: np.ndarray, end_time: float, threshold: int) -> list[tuple[float, float, float]]:
    """(channel, down time, up time) of each pedal press: down at value >= threshold, up below it.

    Repeated "down" or "up" messages do not start or end a press; a press still held at the end of the file is
    released at its last message (madmom's rule).
    """
    intervals, down = [], {}
    for time, value, channel in sustain:
        if value >= threshold:
            down.setdefault(channel, time)
        elif channel in down:
            intervals.append((channel, down.pop(channel), time))
    for channel, start in down.items():
        intervals.append((channel, start, end_time))
    return intervals


def midi_to_notes(path: str | os.PathLike, sustain_threshold: int = 64, apply_sustain: bool = True) -> np.ndarray:
    """Notes of a performance MIDI file, with offsets extended by the sustain pedal.

    1. Note-on / note-off pairs give (onset, offset, pitch, velocity) (madmom's ``MIDIFile.notes``).
    2. With ``apply_sustain``: every note whose offset lies within a pedal press (inclusive; the pedal counts as
       down while CC64 >= ``sustain_threshold``) ends at the pedal release instead; a press held at the end of
       the file is released at its last MIDI message.  Then every note is cut at the next onset of the same
       pitch.  This equals madmom's ``MIDIFile.sustained_notes`` for ``sustain_threshold=64``, the convention of
       madmom, Onsets & Frames and the piano_transcription code; the paper's "above 64" is ``65``.

    Parameters
    ----------
    path : path
        A standard MIDI file (type 0 or 1).
    sustain_threshold : int
        Lowest CC64 value that counts as pedal down, 1..127.
    apply_sustain : bool
        False returns the key-release offsets (step 1 only).

    Returns
    -------
    ndarray float64 (n_notes, 4)
        Columns: onset (s), offset (s), MIDI pitch, velocity (1..127); rows sorted by onset, then pitch, then
        key-release duration (madmom's order).
    """
    if not 1 <= int(sustain_threshold) <= 127:
        raise ValueError(f"midi_to_notes: sustain_threshold must be in 1..127, got {sustain_threshold}")
    content = _read_midi(path)
    notes = content.notes.copy()
    onset, pitch, duration, channel = notes[:, 0], notes[:, 1], notes[:, 2], notes[:, 4]
    if apply_sustain and len(notes):
        offsets = onset + duration  # the key releases, all compared against every press
        for ch, down, up in _pedal_intervals(content.sustain, content.end_time, int(sustain_threshold)):
            held = (offsets >= down) & (offsets <= up) & (channel == ch)
            duration[held] = up - onset[held]
        for p in np.unique(pitch):  # a re-struck key damps the previous note (across channels, as madmom)
            idx = np.flatnonzero(pitch == p)
            duration[idx[:-1]] = np.minimum(duration[idx[:-1]], np.diff(onset[idx]))
    return np.column_stack([onset, onset + duration, pitch, notes[:, 3]])


def sustain_events(path: str | os.PathLike) -> np.ndarray:
    """The sustain-pedal curve of a MIDI file: every CC64 message, all channels together.

    Returns
    -------
    ndarray float64 (n_events, 2)
        Columns: time (s), CC64 value 0..127; in file order (non-decreasing time).
    """
    return _read_midi(path).sustain[:, :2].copy()
