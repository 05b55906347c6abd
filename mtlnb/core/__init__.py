"""Plumbing both studies share: atomic file writing (`io`), where data, runs and figures live (`paths`), the
figure style and saving (`plots`), the resumable training loop (`training`) and FluidSynth rendering (`synthesis`)."""
