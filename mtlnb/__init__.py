"""mtlnb: a reproducible companion to two studies of multitask learning for music transcription.

The package is organised by study, then by pipeline stage, with shared plumbing apart:

- ``mtlnb.camera_primus``: OMR and A2S on Camera-PrIMuS, late fusion, GradSPSA (notebooks 01-05);
- ``mtlnb.piano``: multitask piano transcription (notebooks 06-08);
- ``mtlnb.core``: what both studies use (atomic files, paths, figure style, the training loop, FluidSynth);
- ``mtlnb.profiles`` (every size of a run), ``mtlnb.reproduce`` (every notebook through papermill) and
  ``mtlnb.cli`` (``python -m mtlnb``).

Import the module you need explicitly, e.g. ``from mtlnb.camera_primus.decoding import ngram_lm``.
"""

import contextlib as _contextlib
import io as _io
import os as _os

__version__ = "0.1.0"

# librosa rebuilds the CQT filter bank on every call, 70 % of the time of a 14 s incipit's CQT; its documented disk
# cache (joblib, keyed by the parameters) removes that.  Set before librosa is imported; a user's setting wins.
_os.environ.setdefault("LIBROSA_CACHE_DIR",
                       _os.path.join(_os.environ.get("XDG_CACHE_HOME", _os.path.expanduser("~/.cache")), "mtlnb",
                                     "librosa"))

# pyfluidsynth (imported by pretty_midi too) prints where it found libfluidsynth whenever CI is set; import it once
# here, quietly, so that notebook outputs stay clean.  A missing library is reported later, by mtlnb.core.synthesis.
with _contextlib.redirect_stdout(_io.StringIO()):
    try:
        import fluidsynth as _fluidsynth  # noqa: F401
    except (ImportError, OSError):
        pass
