"""Where the GradSPSA study's artefacts live for a profile, and how each notebook gets them.

Every notebook calls :func:`primus_study` with its profile and gets the same corpus, feature cache, folds and model
folders.  A notebook builds what it needs explicitly (:meth:`PrimusStudy.build_corpus`,
:meth:`PrimusStudy.build_cache`, :func:`mtlnb.camera_primus.networks.runs.ensure_run`), so that it also runs on its
own; the later stages (word graphs, fusion, scenarios) only read, and say what is missing::

    data/primus-<profile>/            (MTLNB_DATA moves data/)
        manifest.json  Corpus/<id>/…   the corpus (synthetic unless ``corpus_dir`` points at a real one)
        features-<hash>/               the feature cache
        folds/{train,val,test}_gt_fold<k>.dat
        models/fold<k>/<name>/         checkpoints, logs and posteriors of each training
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mtlnb.camera_primus.corpus import feature_cache, primus
from mtlnb.core.paths import data_root, reference_root
from mtlnb.profiles import Profile


@dataclass
class PrimusStudy:
    """The corpus, cache, folds and model folders of one profile (or of a real corpus)."""

    profile: Profile
    root: Path  # where derived files go
    corpus_root: Path  # the corpus read (== root for the synthetic corpus)
    synthetic: bool
    jobs: int | None = None

    def build_corpus(self, progress: bool = True):
        """Build (or finish) the synthetic corpus of the profile; returns the build report (None for a real one)."""
        if not self.synthetic:
            return None
        from mtlnb.camera_primus.corpus.synthetic import build_corpus

        return build_corpus(self.root, self.profile.corpus.n_pairs, seed=self.profile.corpus.seed, jobs=self.jobs,
                            progress=progress)

    @property
    def corpus(self) -> primus.PrimusCorpus:
        return primus.PrimusCorpus(self.corpus_root)

    def ids(self) -> list[str]:
        """Sample ids of the study: the synthetic corpus's, or a real corpus's cleansed subset when its id list
        (``clean_samples.dat`` beside ``Corpus/``) exists."""
        listed = self.corpus_root / "clean_samples.dat"
        return primus.read_id_list(listed) if listed.is_file() and not self.synthetic else self.corpus.ids()

    def build_cache(self, progress: bool = True, wait: bool = False) -> feature_cache.FeatureCache:
        cache_dir = feature_cache.default_cache_dir(self.root)
        return feature_cache.build_cache(self.corpus_root, cache_dir, ids=self.ids(), jobs=self.jobs,
                                         progress=progress, wait=wait)

    def cache(self) -> feature_cache.FeatureCache:
        """The feature cache, built or completed if needed (an up-to-date cache is only checked, not rebuilt); a
        build running elsewhere on it (e.g. a concurrent training completing it) is waited for."""
        return self.build_cache(progress=False, wait=True)

    @cached_property
    def folds(self) -> list[primus.Fold]:
        """The baseline's folds when the ids are the real cleansed ones, else generated ones (written to
        ``folds/`` so that they can be inspected and reused)."""
        ref = reference_root()
        baseline = ref / "primus" / "folds" / "ScenarioX" if ref else None
        folds, self.folds_source = primus.folds_for(self.ids(), baseline, k=self.profile.corpus.n_folds,
                                                    seed=self.profile.corpus.seed)
        if self.profile.corpus.subset_fraction < 1:
            folds = [primus.subsample_fold(f, self.profile.corpus.subset_fraction, self.profile.corpus.seed)
                     for f in folds]
        primus.write_folds(self.root / "folds", folds)
        return folds

    def model_dir(self, fold: int, name: str) -> Path:
        """``models/fold<k>/<name>/``: one training's checkpoints, log and posteriors."""
        d = self.root / "models" / f"fold{fold}" / name
        d.mkdir(parents=True, exist_ok=True)
        return d


def primus_study(profile: Profile, corpus_dir: str | os.PathLike | None = None,
                 jobs: int | None = None) -> PrimusStudy:
    """The study's files for ``profile``: the synthetic corpus ``data/primus-<profile>/`` by default, or a real
    Camera-PrIMuS folder ``corpus_dir`` (derived files then go to ``data/primus-real-<profile>/``)."""
    if corpus_dir:
        primus.corpus_dir(corpus_dir)  # fail early with a clear message
        root = data_root() / f"primus-real-{profile.name}"
        root.mkdir(parents=True, exist_ok=True)
        return PrimusStudy(profile, root, Path(corpus_dir), synthetic=False, jobs=jobs)
    root = data_root() / f"primus-{profile.name}"
    return PrimusStudy(profile, root, root, synthetic=True, jobs=jobs)
