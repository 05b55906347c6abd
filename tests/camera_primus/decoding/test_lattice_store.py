"""Tests for mtlnb.camera_primus.decoding.lattice_store: keys, layout on disk, the shard format and its failures.

The shards hold lattices decoded here from seeded random posteriors (with an n-gram LM) and hand-built ones; the
round trip must give back every array bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mtlnb.camera_primus.decoding import lattice_store
from mtlnb.camera_primus.decoding.lattice import Lattice
from mtlnb.camera_primus.decoding.ngram_lm import NGramLM
from mtlnb.camera_primus.decoding.search import DecoderConfig, WordGraphDecoder

VOCAB = ["a", "b", "c"]
ARRAYS = ("src", "dst", "symbol", "acoustic", "graph", "lm", "t_start", "t_symbol", "t_end", "node_time")


@pytest.fixture(scope="module")
def decoded():
    """Three decoded lattices (12, 20 and 0 frames) of one decoder with a bigram LM, keyed by sample id."""
    rng = np.random.default_rng(7)
    lm = NGramLM(order=2).fit([["a", "b", "c"], ["a", "a", "b"], ["c", "b"]], vocabulary=VOCAB)
    dec = WordGraphDecoder(VOCAB, lm, DecoderConfig(beam=10.0, lattice_beam=6.0))
    post = {sid: np.log(rng.dirichlet(np.full(4, 0.3), size=T)) for sid, T in (("s1", 12), ("s2", 20), ("s3", 0))}
    return {sid: dec.decode(x) for sid, x in post.items()}


@pytest.fixture
def posteriors_file(tmp_path):
    path = tmp_path / "posteriors_test.npz"
    path.write_bytes(b"stand-in for a posteriors file")
    return path


def assert_same_lattice(a: Lattice, b: Lattice) -> None:
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), name
    assert (a.vocabulary, a.num_nodes, a.num_frames, a.config) == (b.vocabulary, b.num_nodes, b.num_frames, b.config)


# ---------------------------------------------------------------------------------------------------------------
# keys


def test_the_arrays_stored_are_every_array_of_a_lattice():
    arrays = {f.name for f in dataclasses.fields(Lattice) if f.type in ("np.ndarray",)}
    assert set(lattice_store._LATTICE_ARRAYS) == arrays == set(ARRAYS)


def test_key_is_stable_and_changes_with_the_posteriors_lm_and_decoder(posteriors_file, tmp_path):
    cfg = DecoderConfig()
    key = lattice_store.lattice_key(posteriors_file, "lm-1", cfg)
    assert len(key) == 64 and int(key, 16) >= 0  # hex SHA-256
    assert lattice_store.lattice_key(posteriors_file, "lm-1", DecoderConfig()) == key  # equal settings, equal key
    assert lattice_store.lattice_key(posteriors_file, "lm-2", cfg) != key
    for change in ({"beam": 14.0}, {"lattice_beam": 11.0}, {"acoustic_scale": 1.0}, {"topology": "ctc"},
                   {"max_active": 100}, {"oov_logprob": -10.0}, {"insertion_penalty": -0.8}):
        assert lattice_store.lattice_key(posteriors_file, "lm-1", dataclasses.replace(cfg, **change)) != key, change
    # the posteriors file: another path, another size, another modification time (a retrained network)
    copy = tmp_path / "copy.npz"
    copy.write_bytes(posteriors_file.read_bytes())
    assert lattice_store.lattice_key(copy, "lm-1", cfg) != key
    st = os.stat(posteriors_file)
    os.utime(posteriors_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched = lattice_store.lattice_key(posteriors_file, "lm-1", cfg)
    assert touched != key
    posteriors_file.write_bytes(posteriors_file.read_bytes() + b"!")
    os.utime(posteriors_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert lattice_store.lattice_key(posteriors_file, "lm-1", cfg) not in (key, touched)


def test_file_stamp_names_the_resolved_path_size_and_mtime(posteriors_file, monkeypatch):
    monkeypatch.chdir(posteriors_file.parent)
    stamp = lattice_store.file_stamp(posteriors_file.name)  # relative: resolved
    st = os.stat(posteriors_file)
    assert stamp == {"path": str(posteriors_file.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


# ---------------------------------------------------------------------------------------------------------------
# layout on disk


def test_shard_path_depends_on_the_key_prefix_and_the_ordered_ids(tmp_path):
    key = "0123456789abcdef" * 4
    path = lattice_store.lattice_shard_path(tmp_path, key, ["s1", "s2"])
    assert path.parent == tmp_path / key[:24]
    assert path.name.startswith("shard-") and path.suffix == ".npz" and len(path.stem) == len("shard-") + 16
    assert lattice_store.lattice_shard_path(tmp_path, key, ("s1", "s2")) == path
    assert lattice_store.lattice_shard_path(tmp_path, key, ["s2", "s1"]) != path  # order matters
    assert lattice_store.lattice_shard_path(tmp_path, key, ["s1"]) != path  # another sample cap
    other_key = "f" + key[1:]
    assert lattice_store.lattice_shard_path(tmp_path, other_key, ["s1", "s2"]).parent != path.parent


def test_settings_json_says_what_the_key_hashes(tmp_path, posteriors_file):
    cfg = DecoderConfig(beam=9.0)
    key = lattice_store.lattice_key(posteriors_file, "lm-1", cfg)
    lattice_store.save_settings(tmp_path / "store", key, posteriors_file, "lm-1", cfg)
    files = sorted(p.relative_to(tmp_path / "store") for p in (tmp_path / "store").rglob("*"))
    assert files == [Path(key[:24]), Path(key[:24]) / "settings.json"]
    settings = json.loads((tmp_path / "store" / key[:24] / "settings.json").read_text())
    assert settings == {"key": key, "posteriors": lattice_store.file_stamp(posteriors_file), "lm": "lm-1",
                        "decoder": dataclasses.asdict(cfg)}


def test_shard_members_are_the_documented_ones_uncompressed(tmp_path, decoded):
    path = tmp_path / "shard.npz"
    lattice_store.save_lattices(path, "k" * 64, ["s1", "s2"], [decoded["s1"], decoded["s2"]])
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    names = {i.filename for i in infos}
    expected = {f"{j}.{name}.npy" for j in range(2) for name in ARRAYS}
    expected |= {f"__{m}__.npy" for m in ("format", "key", "ids", "vocabulary", "decoder", "num_nodes", "num_frames")}
    assert names == expected
    assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)  # uncompressed: members read one at a time
    with np.load(path) as npz:
        assert str(npz["__format__"]) == lattice_store.LATTICE_FORMAT and str(npz["__key__"]) == "k" * 64
        assert npz["__ids__"].tolist() == ["s1", "s2"] and npz["__vocabulary__"].tolist() == VOCAB
        assert json.loads(str(npz["__decoder__"])) == dataclasses.asdict(decoded["s1"].config)
        assert npz["__num_nodes__"].tolist() == [decoded["s1"].num_nodes, decoded["s2"].num_nodes]
        assert npz["__num_frames__"].tolist() == [12, 20]
        assert npz["1.acoustic"].dtype == np.float64 and npz["1.src"].dtype == np.int64


# ---------------------------------------------------------------------------------------------------------------
# round trip


def test_round_trip_is_bit_identical(tmp_path, decoded):
    ids = ["s1", "s2", "s3"]
    path = lattice_store.lattice_shard_path(tmp_path, "k" * 64, ids)
    lattice_store.save_lattices(path, "k" * 64, ids, [decoded[s] for s in ids])
    with lattice_store.LatticeShard(path) as shard:
        assert shard.ids == ids and shard.key == "k" * 64 and shard.path == path
        back = shard.lattices()
        assert list(back) == ids
        single = shard["s2"]
    for sid in ids:
        assert_same_lattice(decoded[sid], back[sid])
    assert_same_lattice(decoded["s2"], single)
    assert back["s3"].num_frames == 0 and back["s3"].best_path() == []
    assert back["s1"].mbr() == decoded["s1"].mbr()  # read-offs follow


def test_round_trip_of_hand_built_lattices_without_config(tmp_path):
    hand = [Lattice.from_arcs(VOCAB, [(0, 1, "a", -1.0, -0.5), (0, 1, "b", -0.2, -2.0), (1, 2, None, 0.0, 0.0)]),
            Lattice.from_paths(VOCAB, [(["c"], 0.75), ([], 0.25)])]
    lattice_store.save_lattices(tmp_path / "hand.npz", "h", ["x", "y"], hand)
    with lattice_store.LatticeShard(tmp_path / "hand.npz") as shard:
        for lat, sid in zip(hand, ["x", "y"]):
            assert shard[sid].config is None
            assert_same_lattice(lat, shard[sid])


def test_usable_shard_checks_file_key_and_ids(tmp_path, decoded):
    path = tmp_path / "k" / "shard.npz"
    assert not lattice_store.usable_shard(path, "k", ["s1"])  # missing
    lattice_store.save_lattices(path, "k", ["s1", "s2"], [decoded["s1"], decoded["s2"]])
    assert lattice_store.usable_shard(path, "k", ["s1", "s2"])
    assert lattice_store.usable_shard(path, "k", ("s1", "s2"))
    assert not lattice_store.usable_shard(path, "other", ["s1", "s2"])
    assert not lattice_store.usable_shard(path, "k", ["s2", "s1"])
    assert not lattice_store.usable_shard(path, "k", ["s1"])
    path.write_bytes(path.read_bytes()[:200])
    assert not lattice_store.usable_shard(path, "k", ["s1", "s2"])  # damaged: decoded again, no exception


# ---------------------------------------------------------------------------------------------------------------
# refusals and failures


def test_save_refuses_mismatched_inputs(tmp_path, decoded):
    with pytest.raises(ValueError, match="2 ids for 1 lattices"):
        lattice_store.save_lattices(tmp_path / "x.npz", "k", ["s1", "s2"], [decoded["s1"]])
    with pytest.raises(ValueError, match="0 ids for 0 lattices"):
        lattice_store.save_lattices(tmp_path / "x.npz", "k", [], [])
    hand = Lattice.from_paths(VOCAB, [(["a"], 1.0)])
    with pytest.raises(ValueError, match="'h' has another vocabulary or decoder than 's1'"):
        lattice_store.save_lattices(tmp_path / "x.npz", "k", ["s1", "h"], [decoded["s1"], hand])
    other_vocab = dataclasses.replace(decoded["s2"], vocabulary=("a", "b", "d"))
    with pytest.raises(ValueError, match="another vocabulary"):
        lattice_store.save_lattices(tmp_path / "x.npz", "k", ["s1", "s2"], [decoded["s1"], other_vocab])
    assert not (tmp_path / "x.npz").exists()


def test_truncated_shard_is_refused_naming_the_file(tmp_path, decoded):
    path = tmp_path / "shard-trunc.npz"
    lattice_store.save_lattices(path, "k", ["s1"], [decoded["s1"]])
    data = path.read_bytes()
    for cut in (0, 100, len(data) // 2, len(data) - 10):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="shard-trunc.npz"):
            lattice_store.LatticeShard(path)


def test_foreign_npz_is_refused_naming_the_file(tmp_path):
    np.savez(tmp_path / "posteriors.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="posteriors.npz is not a readable lattice shard"):
        lattice_store.LatticeShard(tmp_path / "posteriors.npz")
    np.savez(tmp_path / "future.npz", __format__=np.array("mtlnb.lattice-shard/99"))
    with pytest.raises(ValueError, match="future.npz .*lattice-shard/99"):
        lattice_store.LatticeShard(tmp_path / "future.npz")


def test_damaged_member_is_reported_naming_the_file_and_sample(tmp_path, decoded):
    path = tmp_path / "shard-bad.npz"
    lattice_store.save_lattices(path, "k", ["s1", "s2"], [decoded["s1"], decoded["s2"]])
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("1.acoustic.npy")
    data = bytearray(path.read_bytes())
    # flip a byte in the middle of the member's data (after its local header): the CRC check fails on reading
    data[info.header_offset + 30 + len(info.filename) + info.file_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with lattice_store.LatticeShard(path) as shard:  # the header members are intact: it opens
        assert_same_lattice(decoded["s1"], shard["s1"])
        with pytest.raises(ValueError, match=r"sample 's2' from .*shard-bad.npz"):
            shard["s2"]
        with pytest.raises(KeyError, match="shard-bad.npz"):
            shard["nope"]
    # what late fusion's workers catch
    assert issubclass(ValueError, lattice_store.READ_ERRORS) and issubclass(KeyError, lattice_store.READ_ERRORS)


def test_a_failed_write_leaves_no_partial_file(tmp_path, decoded, monkeypatch):
    path = tmp_path / "store" / "shard.npz"
    lattice_store.save_lattices(path, "old", ["s1"], [decoded["s1"]])
    before = path.read_bytes()
    real_write_bytes = Path.write_bytes

    def half_then_disk_full(self, data):
        real_write_bytes(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_disk_full)
    with pytest.raises(OSError, match="No space left"):
        lattice_store.save_lattices(path, "new", ["s1", "s2"], [decoded["s1"], decoded["s2"]])
    with pytest.raises(OSError):
        lattice_store.save_lattices(tmp_path / "store" / "fresh.npz", "new", ["s2"], [decoded["s2"]])
    monkeypatch.undo()
    assert path.read_bytes() == before  # the old shard is untouched ...
    assert sorted(p.name for p in path.parent.iterdir()) == ["shard.npz"]  # ... no temporary or partial file
    assert lattice_store.usable_shard(path, "old", ["s1"])
    with pytest.raises(OSError):  # a settings.json that fails half-way leaves nothing either
        monkeypatch.setattr(Path, "write_bytes", half_then_disk_full)
        lattice_store.save_settings(tmp_path / "store", "f" * 64, path, "lm", DecoderConfig())
    monkeypatch.undo()
    assert list((tmp_path / "store" / ("f" * 24)).iterdir()) == []
