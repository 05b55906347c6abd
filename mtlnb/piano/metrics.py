"""Metrics of the piano study: framewise P/R/F1 and R² (Kelz et al. 2019, Eq. 1–6), and note-level F1.

Framewise (what the paper's Tables I–IV report)
-----------------------------------------------
- **P, R, F1** for onsets, frames and offsets (Eq. 1–3): a prediction counts as positive at probability
  ≥ ``threshold`` (0.5; the authors' code used ``> 0.5``, which differs only on exact ties), targets at ≥ 0.5;
  TP, FP and FN are summed over frames *and* keys, then P = ΣTP / (ΣTP + ΣFP), R = ΣTP / (ΣTP + ΣFN),
  F1 = 2PR / (P + R).  Empty denominators give 0 (sklearn's convention with ``zero_division=0``).
- **R²** for velocity and sustain (Eq. 4–6), taken literally with vector targets: ȳ = (1/T) Σ_t y_t is the mean
  over frames *per key*, and both sums of squares run over frames and keys:
  R² = 1 − Σ_t ||y_t − ŷ_t||² / Σ_t ||y_t − ȳ||².  (This equals sklearn's ``r2_score(...,
  multioutput="variance_weighted")``; keys that never vary add nothing to either sum.)  With no variance at all
  R² is undefined: NaN.

Two ways to pool over a set of pieces, both reported by :class:`FramewiseAccumulator`:

- **micro**: all frames of all pieces as one sequence (Eq. 1–6 with t over the whole set);
- **piece** (per-piece average): Eq. 1–6 per piece, then the mean over pieces — what the authors' public code
  (``rainerkelz/ICASSP19``, ``models/ofos.py``: sklearn micro P/R/F1 per file, averaged over files) computes.
  A piece whose R² is undefined (e.g. no pedal at all) is left out of the R² mean.

The paper does not say which one its tables use; we assume its authors' code, i.e. the **per-piece average**, and
compare our ``*_f1`` / ``*_r2`` (per-piece) with Tables I–IV; the ``*_micro`` values are reported beside them.

Notes (the field's measure; not in the paper)
---------------------------------------------
:func:`decode_notes` is a simple peak-picking decoder: a note starts at every local maximum (over ±``peak_radius``
frames) of a key's onset probability that reaches ``threshold``; it extends over the following frames while the
key's frame probability stays ≥ ``threshold`` (never past the key's next onset) and ends at the last of them, one
frame after the onset at the earliest.  Times are frame / fps (frame i is centred on sample i·hop).
:func:`note_scores` compares notes with ``mir_eval.transcription.precision_recall_f1_overlap`` (pitches converted
to Hz, 50 ms onset tolerance, offsets within 20 % of the note or 50 ms with ``offset_ratio=0.2``, onsets only with
``offset_ratio=None``).

Whole pieces
------------
:func:`predict_piece` runs a trained network over every frame of a piece (its 11-frame context windows, eval mode);
:func:`note_level_scores` does that for every piece of a cache's split and scores the decoded notes against the
piece's MIDI file.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from mtlnb.core import training
from mtlnb.piano import data as piano_data, maestro, networks

BINARY = ("onsets", "frames", "offsets")
REGRESSION = ("velocity", "sustain")
FPS = 50.0  # frames per second of the targets (44,100 / 882)
LOWEST_PITCH = 21  # MIDI pitch of key column 0 (A0)


def _check_pair(reference, estimate, where: str) -> tuple[np.ndarray, np.ndarray]:
    ref, est = np.asarray(reference, dtype=np.float64), np.asarray(estimate, dtype=np.float64)
    if ref.shape != est.shape:
        raise ValueError(f"{where}: reference {ref.shape} and estimate {est.shape} differ in shape")
    if ref.ndim not in (1, 2):
        raise ValueError(f"{where}: expected (T,) or (T, keys) arrays, got shape {ref.shape}")
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(est))):
        raise ValueError(f"{where}: NaN or infinite values in the reference or the estimate")
    return (ref[:, None], est[:, None]) if ref.ndim == 1 else (ref, est)


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def framewise_counts(reference, estimate, threshold: float = 0.5) -> tuple[int, int, int]:
    """(ΣTP, ΣFP, ΣFN) over frames and keys.

    Parameters
    ----------
    reference : array (T, keys) or (T,)
        Targets in [0, 1] (the max-filtered onset/offset targets are already 0/1); positive at ≥ 0.5.
    estimate : array, same shape
        Probabilities; positive at ≥ ``threshold``.
    """
    ref, est = _check_pair(reference, estimate, "framewise_counts")
    r, e = ref >= 0.5, est >= threshold
    return int(np.sum(r & e)), int(np.sum(~r & e)), int(np.sum(r & ~e))


def framewise_prf(reference, estimate, threshold: float = 0.5) -> tuple[float, float, float]:
    """Framewise precision, recall and F1 (paper Eq. 1–3), summed over frames and keys: see the module docstring."""
    return _prf(*framewise_counts(reference, estimate, threshold))


def r2_score(reference, estimate) -> float:
    """Coefficient of determination (paper Eq. 4–6) with the per-key mean ȳ; NaN where the reference is constant.

    Parameters
    ----------
    reference, estimate : array (T, keys) or (T,)
        Regression targets and predictions (velocity / 127, sustain / 127).
    """
    ref, est = _check_pair(reference, estimate, "r2_score")
    sse = np.sum((ref - est) ** 2)
    sst = np.sum((ref - ref.mean(axis=0)) ** 2)
    return float(1 - sse / sst) if sst > 0 else float("nan")


class FramewiseAccumulator:
    """Sums for Eq. 1–6 per piece, fed batch by batch in any order; :meth:`result` pools micro and per piece.

    Per piece it keeps, for each binary task, TP/FP/FN counts; for each regression task, per key, the frame
    count, Σy, Σy² and Σ(y − ŷ)², so that the sum of squares about the per-key mean is Σy² − (Σy)²/n (in float64).

    Parameters
    ----------
    threshold : float
        Decision threshold of the binary tasks.
    """

    def __init__(self, threshold: float = 0.5):
        self.threshold = float(threshold)
        self.counts: dict[str, dict[int, np.ndarray]] = defaultdict(dict)  # task -> piece -> [tp, fp, fn]
        self.sums: dict[str, dict[int, np.ndarray]] = defaultdict(dict)  # task -> piece -> (4, keys)

    def update(self, estimates: Mapping[str, np.ndarray], references: Mapping[str, np.ndarray],
               pieces: np.ndarray) -> None:
        """Add a batch.

        Parameters
        ----------
        estimates : dict task -> array (B, keys)
            Probabilities for the binary tasks, values for the regression tasks; tasks missing here are skipped.
        references : dict task -> array (B, keys)
        pieces : array int (B,)
            Which piece each row belongs to.
        """
        pieces = np.asarray(pieces).reshape(-1)
        for task, est in estimates.items():
            if task not in references:
                raise ValueError(f"FramewiseAccumulator.update: no reference for task {task!r}")
            ref, est = _check_pair(references[task], est, f"FramewiseAccumulator.update({task})")
            if len(ref) != len(pieces):
                raise ValueError(f"FramewiseAccumulator.update: {len(pieces)} piece ids for {len(ref)} rows")
            for k in np.unique(pieces):
                sel = pieces == k
                r, e = ref[sel], est[sel]
                if task in REGRESSION:
                    new = np.stack([np.full(r.shape[1], len(r), dtype=np.float64), r.sum(0), (r ** 2).sum(0),
                                    ((r - e) ** 2).sum(0)])
                    store = self.sums[task]
                else:
                    rp, ep = r >= 0.5, e >= self.threshold
                    new = np.array([np.sum(rp & ep), np.sum(~rp & ep), np.sum(rp & ~ep)], dtype=np.int64)
                    store = self.counts[task]
                store[int(k)] = store[int(k)] + new if int(k) in store else new

    @staticmethod
    def _r2(s: np.ndarray) -> float:
        n, sy, syy, sse = s
        sst = float(np.sum(syy - np.divide(sy ** 2, n, out=np.zeros_like(sy), where=n > 0)))
        return 1 - float(np.sum(sse)) / sst if sst > 1e-12 * max(1.0, float(np.sum(syy))) else float("nan")

    def result(self) -> dict[str, float]:
        """``<task>_precision/_recall/_f1`` (per-piece means) and ``<task>_f1_micro`` for binary tasks;
        ``<task>_r2`` (per-piece mean over pieces where it is defined) and ``<task>_r2_micro`` for regression;
        NaN where nothing was seen."""
        out: dict[str, float] = {}
        for task, per_piece in self.counts.items():
            scores = np.array([_prf(*c) for c in per_piece.values()])
            for j, name in enumerate(("precision", "recall", "f1")):
                out[f"{task}_{name}"] = float(scores[:, j].mean()) if len(scores) else float("nan")
            total = np.sum(list(per_piece.values()), axis=0)
            p, r, f = _prf(*total)
            out.update({f"{task}_precision_micro": p, f"{task}_recall_micro": r, f"{task}_f1_micro": f})
        for task, per_piece in self.sums.items():
            values = np.array([self._r2(s) for s in per_piece.values()])
            defined = values[np.isfinite(values)]
            out[f"{task}_r2"] = float(defined.mean()) if len(defined) else float("nan")
            out[f"{task}_r2_micro"] = self._r2(np.sum(list(per_piece.values()), axis=0))
        return out


# ------------------------------------------------------------------------------------------------------- notes


def decode_notes(onsets, frames, velocity=None, threshold: float = 0.5, peak_radius: int = 1, fps: float = FPS,
                 lowest_pitch: int = LOWEST_PITCH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Peak-picking note decoder: onset probabilities give note starts, frame probabilities their ends.

    Parameters
    ----------
    onsets, frames : array (T, keys)
        Onset and frame probabilities of one piece.
    velocity : array (T, keys), optional
        Velocity outputs (velocity / 127); a note's velocity is 127 × the value at its onset frame (0 without).
    threshold : float
        Minimum onset peak, and the frame probability that keeps a note sounding.
    peak_radius : int
        An onset frame must be the maximum within ±radius frames (the first of equal maxima wins); 1 matches the
        width-3 maximum filter of the onset targets.
    fps : float
        Frames per second.
    lowest_pitch : int
        MIDI pitch of column 0.

    Returns
    -------
    intervals : ndarray float64 (n, 2)
        Onset and offset times in seconds (offset = last sounding frame / fps, at least one frame after onset).
    pitches : ndarray int64 (n,)
        MIDI pitches.
    velocities : ndarray float64 (n,)
        0..127.
    Notes are sorted by onset, then pitch.
    """
    on, fr = np.asarray(onsets, dtype=np.float64), np.asarray(frames, dtype=np.float64)
    if on.ndim != 2 or on.shape != fr.shape:
        raise ValueError(f"decode_notes: onsets {on.shape} and frames {fr.shape} must be equal (T, keys) arrays")
    vel = None if velocity is None else np.asarray(velocity, dtype=np.float64)
    if vel is not None and vel.shape != on.shape:
        raise ValueError(f"decode_notes: velocity {vel.shape} differs from onsets {on.shape}")
    if peak_radius < 0:
        raise ValueError(f"decode_notes: peak_radius must be >= 0, got {peak_radius}")
    n_frames = len(on)
    notes = []
    for k in range(on.shape[1]):
        col = on[:, k]
        padded = np.pad(col, peak_radius, constant_values=-np.inf)
        window = np.lib.stride_tricks.sliding_window_view(padded, 2 * peak_radius + 1)
        # A peak is the first maximum of its window: strictly above what precedes it, at least what follows.
        before = window[:, :peak_radius].max(axis=1) if peak_radius else np.full(n_frames, -np.inf)
        after = window[:, peak_radius + 1:].max(axis=1) if peak_radius else np.full(n_frames, -np.inf)
        starts = np.flatnonzero((col >= threshold) & (col > before) & (col >= after))
        for i, s in enumerate(starts):
            stop = starts[i + 1] if i + 1 < len(starts) else n_frames
            end = s
            while end + 1 < stop and fr[end + 1, k] >= threshold:
                end += 1
            v = 127.0 * vel[s, k] if vel is not None else 0.0
            notes.append((s / fps, max(end, s + 1) / fps, lowest_pitch + k, v))
    notes.sort(key=lambda n: (n[0], n[2]))
    if not notes:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64), np.zeros(0)
    arr = np.array(notes, dtype=np.float64)
    return arr[:, :2].copy(), arr[:, 2].astype(np.int64), arr[:, 3].copy()


def note_scores(ref_intervals, ref_pitches, est_intervals, est_pitches, onset_tolerance: float = 0.05,
                offset_ratio: float | None = 0.2, offset_min_tolerance: float = 0.05) -> tuple[float, float, float]:
    """Note-level precision, recall, F1 with ``mir_eval.transcription.precision_recall_f1_overlap``.

    Parameters
    ----------
    ref_intervals, est_intervals : array (n, 2)
        Onset and offset in seconds (offset > onset).
    ref_pitches, est_pitches : array (n,)
        MIDI pitches (converted to Hz here; mir_eval's 50-cent pitch tolerance then means "the same key").
    onset_tolerance : float
        Seconds (50 ms, the field's standard).
    offset_ratio : float or None
        0.2: offsets must match within 20 % of the reference note's duration (at least ``offset_min_tolerance``);
        None: onsets only.

    Returns
    -------
    (precision, recall, f1)
        0 for an empty reference or estimate (mir_eval warns and returns 0 too).
    """
    import mir_eval

    ref_i, est_i = np.asarray(ref_intervals, dtype=np.float64).reshape(-1, 2), \
        np.asarray(est_intervals, dtype=np.float64).reshape(-1, 2)
    ref_p, est_p = np.asarray(ref_pitches, dtype=np.float64).reshape(-1), \
        np.asarray(est_pitches, dtype=np.float64).reshape(-1)
    if len(ref_i) != len(ref_p) or len(est_i) != len(est_p):
        raise ValueError(f"note_scores: {len(ref_i)}/{len(est_i)} intervals for {len(ref_p)}/{len(est_p)} pitches "
                         "(reference/estimate)")
    if len(ref_i) == 0 or len(est_i) == 0:
        return 0.0, 0.0, 0.0
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_i, mir_eval.util.midi_to_hz(ref_p), est_i, mir_eval.util.midi_to_hz(est_p),
        onset_tolerance=onset_tolerance, offset_ratio=offset_ratio, offset_min_tolerance=offset_min_tolerance)
    return float(p), float(r), float(f)


def piece_note_scores(notes: np.ndarray, predictions: Mapping[str, np.ndarray], threshold: float = 0.5,
                      fps: float = FPS) -> dict[str, float]:
    """Note-level scores of one piece: its reference notes against :func:`decode_notes` of the predictions.

    Parameters
    ----------
    notes : ndarray (n, 4)
        onset (s), offset (s), MIDI pitch, velocity, as :func:`mtlnb.piano.maestro.midi_to_notes` returns.
    predictions : dict
        ``onsets`` and ``frames`` probabilities (T, 88) (``velocity`` optional).

    Returns
    -------
    dict
        ``note_precision/recall/f1`` (onsets only) and ``note_offset_precision/recall/f1`` (offset_ratio 0.2).
    """
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    intervals, pitches, _ = decode_notes(predictions["onsets"], predictions["frames"], predictions.get("velocity"),
                                         threshold=threshold, fps=fps)
    # mir_eval rejects zero-length reference notes; a note shorter than a frame lasts one frame here, as decoded.
    ref = np.column_stack([notes[:, 0], np.maximum(notes[:, 1], notes[:, 0] + 1 / fps)])
    out = {}
    for prefix, ratio in (("note", None), ("note_offset", 0.2)):
        p, r, f = note_scores(ref, notes[:, 2], intervals, pitches, offset_ratio=ratio)
        out.update({f"{prefix}_precision": p, f"{prefix}_recall": r, f"{prefix}_f1": f})
    return out


# ------------------------------------------------------------------------------------------- whole pieces


@torch.no_grad()
def predict_piece(model: nn.Module, spectrogram: np.ndarray, batch_size: int = 1024,
                  device: str = "cpu") -> dict[str, np.ndarray]:
    """Predictions for every frame of one piece (eval mode: no noise).

    Parameters
    ----------
    spectrogram : ndarray (T, 144)

    Returns
    -------
    dict task -> ndarray float32 (T, 88) or (T, 1)
        Probabilities for onsets/frames/offsets, values for velocity/sustain.
    """
    dev = training.resolve_device(device)
    model.to(dev).eval()
    windows = piano_data.context_windows(np.asarray(spectrogram, dtype=np.float32))
    parts: dict[str, list] = {}
    for a in range(0, len(windows), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(windows[a:a + batch_size])).to(dev)
        for t, v in networks.activations(model(x)).items():
            parts.setdefault(t, []).append(v.float().cpu().numpy())
    return {t: np.concatenate(v) for t, v in parts.items()}


def note_level_scores(model: nn.Module, cache: piano_data.PianoCache, split: str = "validation",
                      threshold: float = 0.5, device: str = "cpu") -> pd.DataFrame:
    """Note-level P/R/F1 (onsets; onsets + offsets) of every piece of ``split``, after :func:`decode_notes`.

    The reference notes come from the piece's MIDI file (pedal applied, as the targets).

    Returns
    -------
    pandas.DataFrame
        One row per piece: ``piece``, ``note_precision/recall/f1``, ``note_offset_precision/recall/f1``.
    """
    sources = {p.id: p for p in maestro.pieces(cache.dataset_root, split)}
    rows = []
    for piece in cache.select(split):
        pred = predict_piece(model, cache.spectrogram(piece.id), device=device)
        notes = maestro.midi_to_notes(sources[piece.id].midi_path, cache.settings.sustain_threshold)
        rows.append({"piece": piece.id, **piece_note_scores(notes, pred, threshold, cache.settings.targets.fps)})
    return pd.DataFrame(rows)
