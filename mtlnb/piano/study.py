"""Where the piano study's artefacts live for a profile, and how notebooks 06–08 get them.

Every piano notebook calls :func:`piano_study` with its profile and gets the same performances, feature cache and
run folders; anything missing is built on the spot, so each notebook also runs on its own::

    data/piano-<profile>/                     (MTLNB_DATA moves data/)
        performances/                         synthetic performances in the MAESTRO layout (mtlnb.piano.performance)
            maestro-v3.0.0.csv  synthetic/…
        features-<hash>/                      spectrograms and targets (mtlnb.piano.data)
        lr_range/                             the learning-rate range test (notebook 07)
        models/<run name>/                    one folder per configuration of the grids (mtlnb.piano.training)

With ``dataset_dir`` (a real MAESTRO v2/v3 folder) the performances are read from there and everything derived
goes to ``data/piano-real-<profile>/``; the real folder is never written to.

Choices where the papers are silent: the synthetic performances of every profile use seed :data:`SEED`; the
``paper`` profile (``seconds_per_piece = 0``) has no synthetic stand-in — MAESTRO's 1,276 performances are not
something to imitate with one generator — so it needs ``dataset_dir``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mtlnb.core import io
from mtlnb.piano import maestro, performance, data as piano_data
from mtlnb.core.paths import data_root
from mtlnb.profiles import Profile

SEED = 0  # seed of the synthetic performances (mtlnb.piano.performance.generate's default)


@dataclass
class PianoStudy:
    """The performances, feature cache and run folders of one profile (or of a real MAESTRO folder)."""

    profile: Profile
    root: Path  # where derived files go
    dataset_root: Path  # the MAESTRO-layout folder read
    synthetic: bool
    jobs: int | None = None  # worker processes for building; None = the CPU count

    @property
    def cache_dir(self) -> Path:
        """``features-<settings hash>``: one cache per settings, beside (not inside) the performances."""
        return self.root / f"features-{io.sha256_json(piano_data.SETTINGS.to_dict())[:10]}"

    @property
    def models_dir(self) -> Path:
        """``models/``: the grid runs' folders (:func:`mtlnb.piano.training.run_grid`'s ``root``)."""
        return self.root / "models"

    @property
    def lr_range_dir(self) -> Path:
        return self.root / "lr_range"

    def build_dataset(self, progress: bool = True):
        """Write (or finish) the synthetic performances of the profile; returns their metadata table.

        A real dataset is only read: its metadata table is returned.
        """
        if not self.synthetic:
            return maestro.read_metadata(self.dataset_root)
        p = self.profile.piano
        return performance.generate(self.dataset_root, p.n_pieces, p.seconds_per_piece, seed=SEED,
                                    workers=self.jobs, progress=progress)

    def cache(self, progress: bool = True) -> piano_data.PianoCache:
        """The feature cache, with the synthetic performances built first where they are missing or incomplete.

        An up-to-date cache is only checked (one ``stat`` per file), not recomputed.
        """
        if self.synthetic:
            self.build_dataset(progress)
        return piano_data.build_cache(self.dataset_root, self.cache_dir, jobs=self.jobs, progress=progress)


def piano_study(profile: Profile, dataset_dir: str | os.PathLike | None = None,
                jobs: int | None = None) -> PianoStudy:
    """The piano study's files for ``profile``.

    Parameters
    ----------
    profile : mtlnb.profiles.Profile
        ``profile.piano`` sizes the synthetic performances (``n_pieces`` × ``seconds_per_piece``).
    dataset_dir : path, optional
        A real MAESTRO v2/v3 folder (holding ``maestro-v3.0.0.csv`` or ``maestro-v2.0.0.csv``); derived files
        then go to ``data/piano-real-<profile>/``.
    jobs : int, optional
        Worker processes for the performances and the cache (None: the CPU count).

    Raises
    ------
    ValueError
        The profile has no synthetic performances (``seconds_per_piece = 0``, the paper profile) and no
        ``dataset_dir`` was given.
    FileNotFoundError
        ``dataset_dir`` holds no MAESTRO metadata file.
    """
    if dataset_dir:
        maestro.find_metadata(dataset_dir)  # fail early, naming the files looked for
        root = data_root() / f"piano-real-{profile.name}"
        root.mkdir(parents=True, exist_ok=True)
        return PianoStudy(profile, root, Path(dataset_dir).resolve(), synthetic=False, jobs=jobs)
    if profile.piano.seconds_per_piece <= 0:
        raise ValueError(f"piano_study: profile {profile.name!r} trains on real MAESTRO (seconds_per_piece = 0); "
                         "pass dataset_dir, a MAESTRO v2/v3 folder")
    root = data_root() / f"piano-{profile.name}"
    return PianoStudy(profile, root, root / "performances", synthetic=True, jobs=jobs)
