"""Render MIDI to audio with FluidSynth, in-process.

The baseline ran the FluidSynth program once per file (through midi2audio), which reads the soundfont from disk
every time.  Here one :class:`Renderer` per worker process keeps a synthesiser holding the soundfont, so FluidSynth's
in-process sample cache makes loading it into a fresh synthesiser for each file cheap (tens of milliseconds
instead of 0.7 s for FluidR3_GM), and plays the MIDI events into it directly (pyfluidsynth).  A fresh synthesiser
per file is deliberate: reusing one after ``system_reset`` does not reproduce its output (voice and block state carry
over), and every file must render exactly as it would alone.

Choices where the papers are silent (documented here, recorded in the corpus manifest):

- FluidSynth's own defaults, as its command-line program uses them: gain 0.2, reverb and chorus on.
- Output is the mean of the left and right 16-bit channels as float32 in [-1, 1], which is what ``librosa.load``
  made of the baseline's stereo WAV files.
- The audio ends where the MIDI ends (the last note-off or the end of the last multi-rest): FluidSynth's
  fast-render stops with the MIDI player, and the baseline's real example (9.0 s) shows no release tail.
- Soundfont: ``$MTLNB_SOUNDFONT`` if set, else the first of :data:`SOUNDFONT_CANDIDATES` that exists.  The papers
  used "SGM-v2.01 YamahaGrand"; any General MIDI piano is the practical substitute.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",  # Debian fluid-soundfont-gm: a good General MIDI grand piano
    "/usr/share/sounds/sf2/TimGM6mb.sf2",  # Debian timgm6mb-soundfont: small fallback
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)

FLUIDSYNTH_GAIN = 0.2  # FluidSynth's default master gain


class SynthesisError(RuntimeError):
    """FluidSynth or a soundfont is missing or broken; the message says how to install it."""


def find_soundfont(path: str | os.PathLike | None = None) -> Path:
    """Resolve the soundfont to use: ``path``, else ``$MTLNB_SOUNDFONT``, else a Debian General MIDI soundfont."""
    chosen = path or os.environ.get("MTLNB_SOUNDFONT")
    if chosen:
        p = Path(chosen)
        if not p.is_file():
            raise SynthesisError(f"soundfont {p} does not exist")
        _check_soundfont_header(p)
        return p
    for candidate in SOUNDFONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise SynthesisError(
        "no General MIDI soundfont found; install one (Debian: apt-get install fluid-soundfont-gm) "
        "or set MTLNB_SOUNDFONT to an .sf2 file"
    )


def _check_soundfont_header(path: Path) -> None:
    """Refuse a file that is no SoundFont (``RIFF`` … ``sfbk``, SF2 and SF3) or DLS (``RIFF`` … ``DLS ``) before any
    worker tries it: FluidSynth's own refusal comes from inside each worker process."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[:4] != b"RIFF" or head[8:12] not in (b"sfbk", b"DLS "):
        raise SynthesisError(f"soundfont {path} is not a SoundFont (.sf2/.sf3) or DLS file")


def _import_fluidsynth():
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pyfluidsynth prints where it found the library
            import fluidsynth  # pyfluidsynth; needs the libfluidsynth shared library
    except (ImportError, OSError) as e:  # pragma: no cover - depends on the machine
        raise SynthesisError(
            "pyfluidsynth could not load libfluidsynth; install it (Debian: apt-get install libfluidsynth3)"
        ) from e
    return fluidsynth


@dataclass(frozen=True)
class _Event:
    sample: int  # position in samples
    order: int  # note-offs (0) before controllers (1) before note-ons (2) at the same instant
    kind: str
    channel: int
    a: int
    b: int


def _events(midi: pretty_midi.PrettyMIDI, sr: int) -> list[_Event]:
    events: list[_Event] = []
    for channel, inst in enumerate(midi.instruments):
        if channel >= 16:
            raise ValueError("more than 16 instruments cannot be rendered on one synthesiser")
        for cc in inst.control_changes:
            events.append(_Event(round(cc.time * sr), 1, "cc", channel, cc.number, cc.value))
        for note in inst.notes:
            events.append(_Event(round(note.start * sr), 2, "on", channel, note.pitch, note.velocity))
            events.append(_Event(round(note.end * sr), 0, "off", channel, note.pitch, 0))
    events.sort(key=lambda e: (e.sample, e.order, e.channel, e.a))
    return events


class Renderer:
    """A FluidSynth synthesiser with one soundfont loaded, reused for many files.

    Parameters
    ----------
    sr : int
        Output sample rate in Hz (22,050 for Camera-PrIMuS, 44,100 for the piano study).
    soundfont : path, optional
        See :func:`find_soundfont`.
    """

    def __init__(self, sr: int, soundfont: str | os.PathLike | None = None):
        fluidsynth = _import_fluidsynth()
        self.sr = int(sr)
        self.soundfont = find_soundfont(soundfont)
        self._fluidsynth = fluidsynth
        # Held only to keep all of the soundfont's samples in FluidSynth's process-wide cache.
        self._keeper, _ = self._new_synth(dynamic=False)

    def _new_synth(self, dynamic: bool = True):
        # Dynamic sample loading makes a per-file synthesiser touch only the presets it plays (taken from the
        # keeper's cache): 2-3x faster to set up, and the output is bit-identical (tested).
        synth = self._fluidsynth.Synth(gain=FLUIDSYNTH_GAIN, samplerate=float(self.sr), channels=16,
                                       **{"synth.dynamic-sample-loading": int(dynamic)})
        sfid = synth.sfload(str(self.soundfont))
        if sfid < 0:
            synth.delete()
            raise SynthesisError(f"FluidSynth could not load the soundfont {self.soundfont}")
        return synth, sfid

    def render(self, midi: pretty_midi.PrettyMIDI, duration: float | None = None) -> np.ndarray:
        """Render ``midi`` to mono float32 audio of ``duration`` seconds (default: the MIDI's end time).

        Returns
        -------
        ndarray float32 (n_samples,)
            ``n_samples = round(duration * sr)``, values in [-1, 1].
        """
        if self._keeper is None:
            raise SynthesisError("this Renderer has been closed")
        synth, sfid = self._new_synth()
        try:
            return self._play(synth, sfid, midi, duration)
        finally:
            synth.delete()

    def _play(self, synth, sfid: int, midi: pretty_midi.PrettyMIDI, duration: float | None) -> np.ndarray:
        for channel, inst in enumerate(midi.instruments):
            bank = 128 if inst.is_drum else 0
            synth.program_select(channel, sfid, bank, inst.program)
        total = round((midi.get_end_time() if duration is None else duration) * self.sr)
        out = np.zeros((total, 2), dtype=np.int16)
        pos = 0
        for event in _events(midi, self.sr):
            if event.sample >= total:  # past the end: sent with no audio between, they would flood its queue
                break
            target = event.sample
            if target > pos:
                out[pos:target] = synth.get_samples(target - pos).reshape(-1, 2)
                pos = target
            if event.kind == "on":
                synth.noteon(event.channel, event.a, event.b)
            elif event.kind == "off":
                synth.noteoff(event.channel, event.a)
            else:
                synth.cc(event.channel, event.a, event.b)
        if total > pos:
            out[pos:] = synth.get_samples(total - pos).reshape(-1, 2)
        return (out.astype(np.float32).mean(axis=1) / 32768.0).astype(np.float32)

    def close(self) -> None:
        if self._keeper is not None:
            self._keeper.delete()
            self._keeper = None

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
