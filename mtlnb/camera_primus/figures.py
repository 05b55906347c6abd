"""Every figure of the Camera-PrIMuS study (notebooks 01-05): corpus samples, learning curves, transcriptions, word
graphs, confusion networks, SER over α, scenario heatmaps.

Shared styling and saving live in :mod:`mtlnb.core.plots`; these functions return Matplotlib figures and never save.
"""

from __future__ import annotations

# --- corpus and networks (notebooks 01-03) ---

# --- word graphs and fusion (notebook 04) ---

# --- scenarios and cross-validation (notebook 05) ---
