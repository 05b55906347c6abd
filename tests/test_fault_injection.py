"""What a careful user breaks, on tiny data: killed parallel builds, damaged corpora, malformed inputs, bad settings.

Each test injects one fault and checks that mtlnb gives the correct result or an error naming what and where.
The worker-pool mechanics themselves (SIGKILL, Ctrl-C, the build folder's lock) are tested in
``tests/core/test_parallel.py``; here the real commands are.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mtlnb import cli
from mtlnb.camera_primus.corpus import feature_cache, primus, synthetic
from mtlnb.camera_primus.networks import ctc_tasks
from mtlnb.camera_primus.notation import semantic
from mtlnb.core import parallel, paths, synthesis, training
from mtlnb.piano import maestro, targets

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sids(n: int) -> list[str]:
    return [synthetic.sample_id(i) for i in range(n)]


def _manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A finished four-sample corpus, copied by the tests that damage one."""
    root = tmp_path_factory.mktemp("built")
    report = synthetic.build_corpus(root, 4, seed=7, jobs=1, progress=False)
    assert report.built == 4 and not report.failed
    return root


def _copy(built: Path, dst: Path, n: int = 4) -> Path:
    shutil.copytree(built, dst)
    for sid in _sids(4)[n:]:
        shutil.rmtree(dst / "Corpus" / sid)
        (dst / synthetic.DONE / f"{sid}.json").unlink()
    return dst


def _same_sample(a: Path, b: Path, sid: str) -> bool:
    return all((a / "Corpus" / sid / p.format(id=sid)).read_bytes() == (b / "Corpus" / sid / p.format(id=sid))
               .read_bytes() for p in synthetic.SAMPLE_FILES)


# ------------------------------------------------------------------------- D1: killed parallel builds


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _running(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_a_parallel_corpus_build_stops_its_workers(tmp_path, built):
    out = tmp_path / "c"
    proc = subprocess.Popen([sys.executable, "-m", "mtlnb", "corpus", "--out", str(out), "--n", "12", "--seed",
                             "7", "--jobs", "2"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and not list((out / "Corpus").glob("syn*")):
        time.sleep(0.05)
    workers = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)  # the parent alone, as `kill -9` does
    proc.wait()
    assert workers, "the build had no worker processes"
    deadline = time.time() + 5
    while time.time() < deadline and any(_running(p) for p in workers):
        time.sleep(0.05)
    assert not [p for p in workers if _running(p)]
    n = len(list((out / "Corpus").iterdir()))
    time.sleep(0.5)
    assert len(list((out / "Corpus").iterdir())) == n  # nothing writes any more
    report = synthetic.build_corpus(out, 4, seed=7, jobs=1, progress=False, trim=True)
    assert not report.failed and _manifest(out)["complete"] and _manifest(out)["n_ready"] == 4
    assert all(_same_sample(built, out, sid) for sid in _sids(4))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_a_parallel_features_build_stops_its_workers(tmp_path):
    from tiny_corpus import TINY_LABELS, write_tiny_sample

    labels = list(TINY_LABELS.values())
    for i in range(16):
        write_tiny_sample(tmp_path / "c" / "Corpus", f"s{i:02d}", labels[i % 4], seed=i % 4, seconds=5.0)
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-m", "mtlnb", "features", "--corpus", str(tmp_path / "c"), "--cache",
                             str(cache), "--jobs", "2"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and not list(cache.glob("cqt/s*.npy")):
        time.sleep(0.02)
    workers = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(_running(p) for p in workers):
        time.sleep(0.05)
    assert workers and not [p for p in workers if _running(p)]
    n = len(list(cache.rglob("*.npy")))
    time.sleep(0.5)
    assert len(list(cache.rglob("*.npy"))) == n < 32  # stopped before the end, and nothing writes any more


def test_a_second_build_in_the_same_folder_is_refused(tmp_path):
    with parallel.build_lock(tmp_path):
        with pytest.raises(parallel.FolderBusyError, match="another mtlnb process"):
            synthetic.build_corpus(tmp_path, 1, seed=7, jobs=1, progress=False)
    assert not (tmp_path / "Corpus").exists()


def test_a_second_feature_build_on_the_same_cache_is_refused(tiny_corpus, tmp_path):
    with parallel.build_lock(tmp_path / "cache"):
        with pytest.raises(parallel.FolderBusyError, match="cache"):
            feature_cache.build_cache(tiny_corpus, tmp_path / "cache", jobs=1, progress=False)


def test_an_up_to_date_cache_is_read_while_another_process_holds_it(tiny_corpus, tmp_path):
    # Concurrent trainings all check the cache that the parent process built; none of them may be refused.
    built = feature_cache.build_cache(tiny_corpus, tmp_path / "cache", jobs=1, progress=False)
    with parallel.build_lock(tmp_path / "cache"):
        again = feature_cache.build_cache(tiny_corpus, tmp_path / "cache", jobs=1, progress=False)
    assert again.ids == built.ids


def test_a_waiting_build_completes_after_the_other_one(tiny_corpus, tmp_path):
    holder = threading.Thread(target=lambda: _hold(tmp_path / "cache", 0.5))
    holder.start()
    time.sleep(0.1)
    started = time.monotonic()
    cache = feature_cache.build_cache(tiny_corpus, tmp_path / "cache", jobs=1, progress=False, wait=True)
    holder.join()
    assert time.monotonic() - started > 0.3 and cache.ids == ["t0", "t1", "t2", "t3"]


def _hold(folder, seconds):
    with parallel.build_lock(folder):
        time.sleep(seconds)


# ------------------------------------------------------------------------- D2: what counts as done


def test_deleted_file_and_empty_folder_are_rebuilt(tmp_path, built):
    root = _copy(built, tmp_path / "c", n=3)
    (root / "Corpus" / "syn000001" / "syn000001.wav").unlink()
    (root / "Corpus" / "syn000003").mkdir()
    report = synthetic.build_corpus(root, 4, seed=7, jobs=1, progress=False)
    assert (report.reused, report.built) == (2, 2)
    assert report.rebuilt == {"syn000001": "syn000001.wav missing", "syn000003": "syn000003.semantic missing"}
    assert "syn000001.wav missing" in report.summary()
    assert all(_same_sample(built, root, sid) for sid in _sids(4))
    assert _manifest(root)["n_ready"] == 4 and _manifest(root)["complete"]


def test_truncated_file_is_rebuilt(tmp_path, built):
    root = _copy(built, tmp_path / "c", n=2)
    jpg = root / "Corpus" / "syn000000" / "syn000000_distorted.jpg"
    jpg.write_bytes(jpg.read_bytes()[:100])
    report = synthetic.build_corpus(root, 2, seed=7, jobs=1, progress=False)
    assert list(report.rebuilt) == ["syn000000"] and "syn000000_distorted.jpg has 100 bytes" in report.rebuilt[
        "syn000000"]
    assert _same_sample(built, root, "syn000000")


def test_corpus_without_markers_is_checked_once(tmp_path, built):
    root = _copy(built, tmp_path / "c", n=3)
    shutil.rmtree(root / synthetic.DONE)  # as a corpus built before markers existed
    png = root / "Corpus" / "syn000002" / "syn000002.png"
    png.write_bytes(png.read_bytes()[:-4])  # cut inside the IEND chunk
    wav = root / "Corpus" / "syn000001" / "syn000001.wav"
    wav.write_bytes(wav.read_bytes()[:-1000])
    report = synthetic.build_corpus(root, 3, seed=7, jobs=1, progress=False)
    assert report.reused == 1
    assert report.rebuilt == {"syn000001": "syn000001.wav truncated", "syn000002": "syn000002.png truncated"}
    assert sorted(p.stem for p in (root / synthetic.DONE).glob("*.json")) == _sids(3)
    assert _same_sample(built, root, "syn000001") and _same_sample(built, root, "syn000002")


def test_a_smaller_n_is_an_error_or_an_explicit_trim(tmp_path, built):
    root = _copy(built, tmp_path / "c", n=3)
    with pytest.raises(ValueError, match="beyond n=2 .*syn000002.*--trim"):
        synthetic.build_corpus(root, 2, seed=7, jobs=1, progress=False)
    assert primus.PrimusCorpus(root).ids() == _sids(3)  # nothing deleted
    report = synthetic.build_corpus(root, 2, seed=7, jobs=1, progress=False, trim=True)
    assert report.trimmed == ["syn000002"] and "beyond n deleted: syn000002" in report.summary()
    assert primus.PrimusCorpus(root).ids() == _sids(2)
    assert (_manifest(root)["n_requested"], _manifest(root)["n_ready"]) == (2, 2)
    assert not (root / synthetic.DONE / "syn000002.json").exists()


def test_a_broken_soundfont_leaves_no_settings_behind(tmp_path):
    good = synthesis.find_soundfont()
    broken = tmp_path / "broken.sf2"
    broken.write_bytes(good.read_bytes()[:4096])  # a soundfont's header, cut short: FluidSynth refuses it
    out = tmp_path / "c"
    with pytest.raises(synthesis.SynthesisError, match="broken.sf2"):
        synthetic.build_corpus(out, 1, seed=7, jobs=1, soundfont=broken, progress=False)
    assert not (out / "manifest.json").exists() and not (out / "Corpus").exists()
    report = synthetic.build_corpus(out, 1, seed=7, jobs=1, soundfont=good, progress=False)  # not refused
    assert report.built == 1


@pytest.mark.parametrize("content", [None, b"not a soundfont at all"])
def test_a_missing_or_foreign_soundfont_creates_nothing(tmp_path, content):
    sf2 = tmp_path / "x.sf2"
    if content is not None:
        sf2.write_bytes(content)
    out = tmp_path / "c"
    with pytest.raises(synthesis.SynthesisError, match="x.sf2"):
        synthetic.build_corpus(out, 2, seed=7, jobs=2, soundfont=sf2, progress=False)
    assert not out.exists()


def test_other_settings_are_refused_only_while_their_samples_exist(tmp_path, built):
    root = _copy(built, tmp_path / "c", n=1)
    with pytest.raises(ValueError, match="other settings"):
        synthetic.build_corpus(root, 1, seed=8, jobs=1, progress=False)
    shutil.rmtree(root / "Corpus" / "syn000000")
    synthetic.build_corpus(root, 1, seed=8, jobs=1, progress=False)
    assert _manifest(root)["settings"]["seed"] == 8


# ------------------------------------------------------------------------- exit codes and environment


def test_corpus_exits_3_and_names_the_left_out_samples(tmp_path, monkeypatch, capsys):
    real = synthetic.make_sample

    def broken(index, seed, camera):
        if index == 1:
            raise ValueError("engraving refused")
        return real(index, seed, camera)

    monkeypatch.setattr(synthetic, "make_sample", broken)
    assert cli.main(["corpus", "--out", str(tmp_path), "--n", "2", "--seed", "7", "--jobs", "1"]) == cli.LEFT_OUT
    printed = capsys.readouterr().out
    assert f"left out syn000001 ({tmp_path / 'Corpus' / 'syn000001'}): ValueError: engraving refused" in printed
    assert "1/2 samples ready" in printed


def test_features_exit_3_and_name_the_left_out_samples(tiny_corpus, tmp_path, capsys):
    (tiny_corpus / "Corpus" / "t2" / "t2.wav").write_bytes(b"not audio")
    code = cli.main(["features", "--corpus", str(tiny_corpus), "--cache", str(tmp_path / "cache"), "--jobs", "1"])
    assert code == cli.LEFT_OUT
    assert f"t2 ({tiny_corpus / 'Corpus' / 't2'}): t2.wav: unreadable audio" in capsys.readouterr().out


def test_render_audio_exits_3_and_names_the_left_out_samples(tiny_corpus, capsys):
    for sid in ("t0", "t1"):
        (tiny_corpus / "Corpus" / sid / f"{sid}.wav").unlink()
    (tiny_corpus / "Corpus" / "t1" / "t1.semantic").write_text("clef-G2\tnote-H9_quarter\t")
    assert cli.main(["render-audio", "--corpus", str(tiny_corpus), "--jobs", "1"]) == cli.LEFT_OUT
    printed = capsys.readouterr().out
    assert f"left out t1 ({tiny_corpus / 'Corpus' / 't1'}): " in printed and "note-H9_quarter" in printed
    assert (tiny_corpus / "Corpus" / "t0" / "t0.wav").is_file()


def test_an_unusable_mtlnb_data_is_named(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("MTLNB_DATA", str(tmp_path / "file" / "data"))
    with pytest.raises(paths.DataRootError, match="MTLNB_DATA="):
        paths.data_root()


# ------------------------------------------------------------------------- D4: the MAESTRO metadata

HEADER = "canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration\n"


@pytest.mark.parametrize("rows, where", [
    ("C,T,,2004,a.midi,a.wav,1.5\nC,T,dev,2004,b.midi,b.wav,1.5\n", "line 2, column split: empty cell"),
    ("C,T,train,2004,a.midi,a.wav,1.5\nC,T,dev,2004,b.midi,b.wav,1.5\n", "line 3, column split: unknown"),
    ("C,T,train,2004,,a.wav,1.5\n", "line 2, column midi_filename: empty cell"),
    ("C,T,train,2004,a.midi,a.wav,1.5\nC,T,train,2004\n", "line 3, column midi_filename: empty cell"),
    ("C,T,train,,a.midi,a.wav,1.5\n", "line 2, column year: empty cell"),
    ("C,T,train,MMIV,a.midi,a.wav,1.5\n", "line 2, column year: not a number: 'MMIV'"),
])
def test_malformed_maestro_cells_are_named(tmp_path, rows, where):
    (tmp_path / "maestro-v3.0.0.csv").write_text(HEADER + rows)
    with pytest.raises(ValueError, match=f"maestro-v3.0.0.csv, {where}"):
        maestro.pieces(tmp_path)


@pytest.mark.parametrize("content, what", [(b"", "empty file"), (HEADER.encode() + b"C,T\xe9,train", "not UTF-8")])
def test_unreadable_maestro_files_are_named(tmp_path, content, what):
    (tmp_path / "maestro-v3.0.0.csv").write_bytes(content)
    with pytest.raises(ValueError, match=f"maestro-v3.0.0.csv: {what}"):
        maestro.read_metadata(tmp_path)


# ------------------------------------------------------------------------- D5: excerpts with negative times


def test_a_note_sounding_into_an_excerpt_has_frames_but_no_onset():
    out = targets.encode_targets(np.array([[-1.0, 0.5, 60, 80]]), None, 100)
    k = 60 - 21
    assert out["onsets"][:, k].sum() == 0
    assert np.flatnonzero(out["frames"][:, k]).tolist() == list(range(26))  # frames 0..25 (0.5 s at 50 fps)
    assert out["velocity"][0, k] == 80 and out["offsets"][25, k] == 1


def test_a_note_before_an_excerpt_is_dropped():
    out = targets.encode_targets(np.array([[-10.0, -5.0, 60, 80], [0.1, 0.2, 62, 70]]), None, 100)
    assert out["frames"][:, 60 - 21].sum() == 0 and out["frames"][:, 62 - 21].sum() == 6
    pedal = targets.sustain_frames(np.array([[-3.0, 127], [-1.0, 40], [0.5, 0]]), 50)
    assert pedal[0, 0] == 40 and pedal[30, 0] == 0  # the last message before the excerpt holds at frame 0


# ------------------------------------------------------------------------- smaller ones


def test_non_utf8_semantic_names_its_path(tmp_path):
    p = tmp_path / "x.semantic"
    p.write_bytes(b"clef-G2\tnote-C5_quarter\xff\t")
    with pytest.raises(ValueError, match=f"{p}: not UTF-8"):
        semantic.read_semantic(p)


def test_space_separated_semantic_says_tokens_are_tab_separated(tmp_path):
    p = tmp_path / "x.semantic"
    p.write_text("clef-G2 keySignature-CM timeSignature-2/4 note-C5_quarter")
    with pytest.raises(ValueError, match="tokens are separated by tabs"):
        semantic.read_semantic(p)


def test_audio_at_another_rate_is_resampled_with_a_warning(tiny_corpus, tmp_path):
    wav = tiny_corpus / "Corpus" / "t1" / "t1.wav"
    audio, _ = sf.read(wav)
    sf.write(wav, np.interp(np.arange(int(len(audio) * 2)) / 2, np.arange(len(audio)), audio), 44100)
    with pytest.warns(UserWarning, match="t1 \\(t1.wav: resampled from 44100 Hz to 22050 Hz\\)"):
        cache = feature_cache.build_cache(tiny_corpus, tmp_path / "cache", jobs=1, progress=False)
    assert "t1" in cache.ids


def test_left_out_samples_lose_their_old_features(tiny_corpus, tmp_path):
    cache = feature_cache.build_cache(tiny_corpus, tmp_path / "cache", jobs=1, progress=False)
    full = cache.nbytes()
    (tiny_corpus / "Corpus" / "t3" / "t3.wav").write_bytes(b"not audio")
    cache = feature_cache.build_cache(tiny_corpus, tmp_path / "cache", jobs=1, progress=False)
    assert list(cache.left_out) == ["t3"]
    assert not (tmp_path / "cache" / "image" / "t3.npy").exists() and not (tmp_path / "cache" / "cqt" / "t3.npy")\
        .exists()
    assert cache.nbytes() == sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*.npy")) < full


class _Labels:
    """A dataset as ctc_tasks sees it: ids and their reference tokens."""

    def __init__(self, tokens: dict[str, list[str]]):
        self.ids, self.tokens = list(tokens), tokens

    def __len__(self) -> int:
        return len(self.ids)


def test_an_empty_reference_is_named_before_the_first_epoch():
    task = ctc_tasks.omr_task(ctc_tasks.Vocabulary(["a", "b"]))
    train, val = _Labels({"s0": ["a"], "s1": ["b"]}), _Labels({"v0": ["a"], "v1": ["b"], "v2": []})
    with pytest.raises(ValueError, match=r"1 validation sample\(s\) have an empty reference label \(v2\)"):
        training._check_inputs(task, train, val)  # the first stage of train(): nothing trained yet


def test_a_truncated_checkpoint_is_named(tmp_path):
    model = torch.nn.Linear(2, 2)
    last = tmp_path / "last.pt"
    torch.save({"model": model.state_dict()}, last)
    last.write_bytes(last.read_bytes()[:200])
    with pytest.raises(ValueError, match=f"{last}: unreadable checkpoint"):
        training.load_weights(model, last)


# ------------------------------------------------------------------------- a full disk


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (needs the right to mount; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip() or done.returncode}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_leaves_no_half_sample(tiny_disk, built):
    shutil.copytree(built / "Corpus" / "syn000000", tiny_disk / "Corpus" / "syn000000")  # ~0.6 MB of 1 MiB
    report = synthetic.build_corpus(tiny_disk, 3, seed=7, jobs=1, progress=False)
    assert report.failed and all("No space left on device" in r for r in report.failed.values())
    corpus = tiny_disk / "Corpus"
    assert not list(corpus.glob(".*.partial")) and not list(tiny_disk.rglob("*.tmp*"))
    for sid in primus.PrimusCorpus(tiny_disk).ids():  # whatever is there is whole
        assert synthetic.check_sample(tiny_disk, sid) is None


def test_a_stray_tie_is_reported(tiny_corpus):
    assert semantic.semantic_to_midi(["clef-G2", "note-C5_quarter", "tie", "note-C5_quarter"]).instruments[0]\
        .notes[0].end == 1.0  # a tie that joins: nothing to report
    for tokens, stray in ((["clef-G2", "note-A4_half", "tie", "note-G4_half"], [2]),  # another pitch follows
                          (["clef-G2", "tie", "note-C5_quarter"], [1]),  # no note before
                          (["clef-G2", "note-C5_quarter", "tie", "rest-quarter"], [2]),
                          (["clef-G2", "note-C5_quarter", "barline", "tie"], [3])):  # the incipit ends
        found: list[int] = []
        semantic.semantic_to_midi(tokens, unresolved_ties=found)
        assert found == stray, tokens
    (tiny_corpus / "Corpus" / "t0" / "t0.wav").unlink()
    (tiny_corpus / "Corpus" / "t0" / "t0.semantic").write_text("clef-G2\tnote-A4_half\ttie\tnote-G4_half\t")
    with pytest.warns(UserWarning, match=r"t0: \[2\]"):
        assert synthetic.render_audio(tiny_corpus, jobs=1, progress=False) == {}


def test_the_manifest_of_an_interrupted_build_says_incomplete(tmp_path, monkeypatch):
    def interrupted(index, seed, camera):
        manifest = _manifest(tmp_path)
        assert (manifest["complete"], manifest["n_ready"], manifest["n_requested"]) == (False, 0, 1)
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "make_sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        synthetic.build_corpus(tmp_path, 1, seed=7, jobs=1, progress=False)
    assert not (tmp_path / "manifest.json").exists() and not (tmp_path / "Corpus").exists()  # nothing was built
