"""How a set of piano performances plays: note density, lengths, polyphony, velocities, pedal use, range.

One definition for synthetic and real performances alike, so that :mod:`mtlnb.piano.performance` can be compared
with MAESTRO (notebook 06) and tuned against it.

- :func:`midi_statistics`: one MIDI file → one row; :func:`piece_table`: a file or a folder → one row per file;
  :func:`dataset_statistics`: a set's means; :func:`compare`: sets side by side.

Conventions (all times in seconds, read with pretty_midi, every non-drum instrument together):

- a note lasts from its onset to its **key release** as written in the MIDI file, *before* the sustain pedal is
  applied (MAESTRO's MIDI holds key releases; the pedal is a separate controller);
- a piece lasts from 0 to its last event (``PrettyMIDI.get_end_time``: last note end or control change);
- **polyphony** is the mean number of sounding (key-down) notes over the time at least one sounds, i.e. the sum of
  note lengths divided by the length of the union of the notes;
- the **pedal** is CC64 held from one message to the next (0 before the first); "down" means CC64 >= 64, the
  threshold madmom and Onsets & Frames use; a **half pedal** is 20 <= CC64 < 100 (dampers that touch the strings
  lightly: neither up nor fully down; the bounds are a choice, no standard exists), and the half-pedal share is
  its time over the time the pedal is pressed at all (CC64 >= 20);
- a **chord** is a group of onsets each within 30 ms of the previous one (a pianist's chord spreads by about that).

Over a set (:func:`dataset_statistics`), each statistic is the mean of the pieces' values (every piece counts
once; ``minutes`` is the total): the convention of :data:`MAESTRO_REFERENCE`.  A set's velocity std is thus the
typical spread within a performance, not that of all its notes pooled (which adds the differences between pieces).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import pretty_midi

from mtlnb.piano import maestro

PEDAL_DOWN = 64  # CC64 value from which the pedal counts as down (madmom, Onsets & Frames)
HALF_PEDAL = (20, 100)  # CC64 values [lo, hi) that count as half pedal (see the module docstring)
CHORD_GAP = 0.03  # s: onsets this close to the previous one belong to the same chord
MIDI_SUFFIXES = (".mid", ".midi")

# The statistics a set is compared by, in table order, with their units.
COLUMNS = {
    "minutes": "total length, min",
    "notes per s": "notes per second",
    "median length s": "median key-release note length, s",
    "polyphony": "mean notes sounding while any sounds",
    "velocity mean": "mean MIDI velocity",
    "velocity std": "std of MIDI velocities",
    "pitch span": "highest minus lowest MIDI pitch, semitones",
    "notes per chord": "mean onsets per 30 ms onset group",
    "pedal down share": "share of time CC64 >= 64",
    "pedal presses per min": "pedal presses (rises through 64) per minute",
    "half-pedal share": "share of pedalled time (CC64 >= 20) with 20 <= CC64 < 100",
}

# Real MAESTRO performances measured with these definitions (pretty_midi, key-release note lengths, CC64 >= 64,
# means over performances): the values the default synthetic performances are tuned to (mtlnb.piano.performance).
MAESTRO_REFERENCE = {"notes per s": 7.5, "median length s": 0.19, "polyphony": 2.2, "velocity std": 14.3,
                     "pedal down share": 0.54}


@dataclass(frozen=True)
class _Raw:
    """What the statistics of one performance are computed from (:func:`_statistics`)."""

    name: str
    seconds: float  # 0 .. last event
    onsets: np.ndarray  # (n,) s, sorted
    lengths: np.ndarray  # (n,) key-release lengths, s
    velocities: np.ndarray  # (n,)
    pitches: np.ndarray  # (n,)
    sounding: float  # s during which at least one note sounds
    chords: int  # onset groups
    pedal_down: float  # s with CC64 >= PEDAL_DOWN
    pedal_any: float  # s with CC64 >= HALF_PEDAL[0]
    pedal_half: float  # s with HALF_PEDAL[0] <= CC64 < HALF_PEDAL[1]
    presses: int  # rises of CC64 through PEDAL_DOWN


def _union_length(starts: np.ndarray, ends: np.ndarray) -> float:
    """Length of the union of the intervals [start, end), s."""
    if not len(starts):
        return 0.0
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], np.maximum.accumulate(ends[order])
    # A new block starts where an interval begins after every earlier one has ended.
    new = np.r_[True, s[1:] > e[:-1]]
    block_start = s[new]
    block_end = np.r_[e[np.flatnonzero(new)[1:] - 1], e[-1]]
    return float(np.sum(block_end - block_start))


def _pedal_times(times: np.ndarray, values: np.ndarray, end: float) -> tuple[float, float, float, int]:
    """Seconds with the pedal down / at least lightly down / half down, and presses, for a CC64 step curve on
    [0, end]."""
    if not len(times):
        return 0.0, 0.0, 0.0, 0
    order = np.argsort(times, kind="stable")
    t = np.clip(np.r_[0.0, times[order], end], 0.0, end)
    v = np.r_[0.0, values[order]]  # value held on [t[i], t[i+1])
    span = np.diff(t)
    down = v >= PEDAL_DOWN
    lo, hi = HALF_PEDAL
    presses = int(np.sum(down[1:] & ~down[:-1]))
    return (float(span[down].sum()), float(span[v >= lo].sum()), float(span[(v >= lo) & (v < hi)].sum()), presses)


def _read(path: str | os.PathLike, name: str | None = None) -> _Raw:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"performance statistics: {path} does not exist")
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # pretty_midi / mido raise many types for broken files
        raise ValueError(f"{path}: not a readable MIDI file ({e})") from e
    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    ccs = [c for inst in pm.instruments if not inst.is_drum for c in inst.control_changes
           if c.number == maestro.SUSTAIN_CC]
    if not notes:
        raise ValueError(f"{path}: no notes")
    onsets = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    order = np.argsort(onsets, kind="stable")
    onsets, ends = onsets[order], ends[order]
    seconds = float(pm.get_end_time())
    down, any_, half, presses = _pedal_times(np.array([c.time for c in ccs]), np.array([c.value for c in ccs]),
                                             seconds)
    return _Raw(name=name or path.stem, seconds=seconds, onsets=onsets, lengths=ends - onsets,
                velocities=np.array([notes[i].velocity for i in order], dtype=float),
                pitches=np.array([notes[i].pitch for i in order]), sounding=_union_length(onsets, ends),
                chords=int(1 + np.sum(np.diff(onsets) > CHORD_GAP)), pedal_down=down, pedal_any=any_,
                pedal_half=half, presses=presses)


def _statistics(r: _Raw) -> dict:
    """The statistics (:data:`COLUMNS`) of one performance."""
    return {
        "minutes": r.seconds / 60,
        "notes per s": len(r.lengths) / r.seconds,
        "median length s": float(np.median(r.lengths)),
        "polyphony": float(r.lengths.sum() / r.sounding),
        "velocity mean": float(r.velocities.mean()),
        "velocity std": float(r.velocities.std()),
        "pitch span": int(r.pitches.max() - r.pitches.min()),
        "notes per chord": len(r.lengths) / r.chords,
        "pedal down share": r.pedal_down / r.seconds,
        "pedal presses per min": r.presses / r.seconds * 60,
        "half-pedal share": r.pedal_half / r.pedal_any if r.pedal_any else 0.0,
    }


def midi_files(source: str | os.PathLike) -> list[Path]:
    """The performance MIDI files of ``source``.

    ``source`` is a MIDI file, a MAESTRO-layout folder (its metadata CSV names the files, in CSV order) or a folder
    of ``.mid`` / ``.midi`` files (sorted by name).  ``FileNotFoundError`` names what was looked for where there
    is none.
    """
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"performance statistics: {source} is neither a MIDI file nor a folder")
    try:
        return list(maestro.read_metadata(source)["midi_path"])
    except FileNotFoundError:
        pass
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"performance statistics: {source} holds no {' or '.join(maestro.CSV_NAMES)} "
                                f"and no {' / '.join(MIDI_SUFFIXES)} files")
    return files


def midi_statistics(path: str | os.PathLike) -> dict:
    """The statistics (:data:`COLUMNS`) of one performance MIDI file; ``ValueError`` naming it if it is unreadable
    or holds no notes."""
    return _statistics(_read(path))


def piece_table(source: str | os.PathLike | Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One row of statistics per performance of ``source`` (see :func:`midi_files`, or a list of MIDI paths),
    indexed by file stem."""
    raws = [_read(p) for p in _paths(source)]
    return pd.DataFrame([_statistics(r) for r in raws], index=pd.Index([r.name for r in raws], name="piece"))


def dataset_statistics(source: str | os.PathLike | Iterable[str | os.PathLike]) -> pd.Series:
    """The mean over the performances of ``source`` of each statistic (``minutes``: the total), plus ``pieces``."""
    table = piece_table(source)
    means = table.mean()
    means["minutes"] = table["minutes"].sum()
    return pd.concat([pd.Series({"pieces": len(table)}), means])


def compare(sets: Mapping[str, str | os.PathLike | Iterable[str | os.PathLike]],
            reference: Mapping[str, float] | None = MAESTRO_REFERENCE) -> pd.DataFrame:
    """Sets of performances side by side: one column per set (:func:`dataset_statistics`), one row per statistic.

    Parameters
    ----------
    sets : {name: source}
        Each source as :func:`dataset_statistics` takes it.
    reference : {statistic: value}, optional
        Added as a last column "MAESTRO (reference)" (default :data:`MAESTRO_REFERENCE`); None leaves it out.
    """
    table = pd.DataFrame({name: dataset_statistics(src) for name, src in sets.items()})
    if reference:
        table["MAESTRO (reference)"] = pd.Series(reference, dtype=float)
    return table


def _paths(source) -> list[Path]:
    if isinstance(source, (str, os.PathLike)):
        return midi_files(source)
    paths = [Path(p) for p in source]
    if not paths:
        raise ValueError("performance statistics: no MIDI files given")
    return paths
