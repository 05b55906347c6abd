"""Shared fixtures: the optional reference material and small generated corpora."""

from __future__ import annotations

import pytest

from mtlnb.core.paths import reference_root


@pytest.fixture
def one_torch_thread():
    """One torch intra-op thread for the test (tiny networks; on a shared 2-core machine two OpenMP threads spin
    against each other, 10-20× slower).  Modules opt in with ``pytestmark = pytest.mark.usefixtures(...)``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def reference():
    """The optional real reference material (:func:`mtlnb.core.paths.reference_root`); tests that need it skip, with
    the reason, where it is absent."""
    root = reference_root()
    if root is None:
        pytest.skip("no reference material: set MTLNB_REFERENCE to a folder holding primus/samples/ and maestro/")
    return root


@pytest.fixture(scope="session")
def primus_samples(reference):
    """The 60 real Camera-PrIMuS sample folders, sorted by id."""
    return sorted(p for p in (reference / "primus" / "samples").iterdir() if p.is_dir())


from tiny_corpus import TINY_LABELS, write_tiny_sample  # noqa: E402  (tests/ is on sys.path under pytest)


@pytest.fixture
def tiny_corpus(tmp_path):
    """Four hand-made samples in the Camera-PrIMuS layout (no generator, engraver or synthesiser involved)."""
    corpus = tmp_path / "tiny" / "Corpus"
    for i, (sid, label) in enumerate(TINY_LABELS.items()):
        write_tiny_sample(corpus, sid, label, seed=i)
    return tmp_path / "tiny"
