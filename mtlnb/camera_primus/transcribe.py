"""Transcribe one's own score: a photo of one staff (OMR), a recording of it (A2S), and the two fused.

What :func:`transcribe` does with a fold's trained networks (``python -m mtlnb transcribe``)::

    photo ──► image features (h = 64) ──► DNN_OMR ──► log-posteriors ──► word graph ──► MBR ──► omr
    recording ──► CQT features (h = 256) ──► DNN_A2S ──► log-posteriors ──► word graph ──► MBR ──► a2s
    both word graphs ──► α-weighted union (lattice-combine) ──► MBR decoding ──► fused

Every stage is the study's own: the inputs go through the feature code the networks were trained on
(:func:`mtlnb.camera_primus.evaluation.sim2real.image_input` / ``audio_input``: the feature cache's 8-bit rounding
included), the networks are read back by :func:`mtlnb.camera_primus.networks.runs.load_network`, the word graphs
use the fold's symbol LM (:func:`mtlnb.camera_primus.fusion.pipeline.select_lm`, fitted on the fold's training
transcripts exactly as notebook 04 fits it) and the profile's search
(:func:`mtlnb.camera_primus.fusion.pipeline.profile_decoder`), and the fused transcription is
:func:`mtlnb.camera_primus.fusion.methods.lattice_combination_mbr`, MBR decoding of the combined lattice.

Written to ``out`` for each transcription ``<name>`` in ``omr``, ``a2s``, ``fused`` (only ``omr`` without a
recording)::

    <name>.semantic   the symbols, tab-separated, as Camera-PrIMuS's own files
    <name>.mid        MIDI by the PrIMuS converter's rules (mtlnb.camera_primus.notation.semantic.semantic_to_midi)
    <name>.mei        MEI written by Verovio from the symbols' Plaine & Easie
    <name>.png        the engraving of that MEI (mtlnb.camera_primus.corpus.engraving), as Camera-PrIMuS draws it
    transcription.json  inputs, run, profile, fold, α, read-offs, every transcription (and the greedy ones)

Choices where nothing is given
------------------------------
- **The unimodal transcriptions** are the MBR decodings of each modality's own word graph: what the fused method
  gives at α = 1 (OMR) and α = 0 (A2S), so that the three outputs differ only by the fusion.  The greedy CTC
  decodings (no LM) are kept in ``transcription.json`` beside them.
- **Read-off.** Where notebook 04 has fused this fold (``<study>/late_fusion/fold<k>/omr-a2s/``) with the same
  networks (their posteriors files unchanged), its read-offs, chosen on the validation set, are used; otherwise
  Kaldi's defaults (acoustic scale 1, no insertion penalty, the baseline's), and ``transcription.json`` says which.
- **What cannot be drawn or played.** A network may put a ``multirest`` before any time signature, whose length
  is then unknown: the MIDI leaves such tokens out and ``transcription.json`` names them; the ``.semantic`` file
  always holds the transcription as decoded.
- **The study behind a run folder.** The LM needs the fold's training and validation transcripts: they are read
  from the study folder the networks were trained in (``<study>/folds/{train,val}_gt_fold<k>.dat`` and the corpus,
  which is ``<study>/Corpus`` or the corpus the study's feature cache was built from).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mtlnb.camera_primus.corpus import engraving, primus
from mtlnb.camera_primus.corpus.feature_cache import MANIFEST as CACHE_MANIFEST
from mtlnb.camera_primus.decoding.lattice_store import file_stamp
from mtlnb.camera_primus.decoding.search import WordGraphDecoder, greedy_decode
from mtlnb.camera_primus.evaluation import sim2real
from mtlnb.camera_primus.fusion import methods as fusion
from mtlnb.camera_primus.fusion import pipeline
from mtlnb.camera_primus.networks import runs
from mtlnb.camera_primus.networks.ctc_tasks import posteriors_path
from mtlnb.camera_primus.notation import semantic
from mtlnb.core import io
from mtlnb.profiles import Profile, get_profile

NAMES = ("omr", "a2s", "fused")  # the transcriptions, in the order they are written
OUTPUT_SUFFIXES = (".semantic", ".mid", ".mei", ".png")  # the files of each transcription
SUMMARY = "transcription.json"
PAIR = "omr-a2s"  # notebook 04's late-fusion folder of the baseline pair (fusion.pipeline.run_fold's naming)


# -- inputs ---------------------------------------------------------------------------------------------------------

def read_image(path: str | os.PathLike) -> np.ndarray:
    """The OMR input of a score photo: float32 ``(64, W)``; ``ValueError`` naming the file if it is no image."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such image file")
    return sim2real.image_input(path)  # features.load_grayscale names the file when OpenCV cannot read it


def read_audio(path: str | os.PathLike) -> np.ndarray:
    """The A2S input of a recording: float32 ``(256, W)`` (mono, resampled to 22,050 Hz); ``ValueError`` naming the
    file if it cannot be read as audio, or is empty or silent."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such audio file")
    try:
        return sim2real.audio_input(path)
    except (RuntimeError, ValueError, OSError) as e:  # soundfile's errors are RuntimeErrors
        raise ValueError(f"{path}: not a readable recording ({e}); give a WAV, FLAC or OGG file") from None


# -- the fold's networks and LM ---------------------------------------------------------------------------------------

@dataclass
class FoldModels:
    """What a fold's transcription needs: its networks, the symbol LM, the search and the read-offs."""

    fold_dir: Path  # <study>/models/fold<k>
    fold: int
    profile: Profile
    omr: runs.TrainedNetwork
    a2s: runs.TrainedNetwork | None  # None: image only
    lm: object  # mtlnb.camera_primus.decoding.ngram_lm.NGramLM
    readoffs: dict  # modality -> pipeline.Readoff
    readoff_source: str  # where the read-offs come from, in words


def fold_dir_of(run: str | os.PathLike | None = None, profile: str | None = None, fold: int | None = None) -> Path:
    """The fold folder (``<study>/models/fold<k>``, holding ``omr/`` and ``a2s/``) named by ``run``, or the one of
    ``profile``'s synthetic study and ``fold`` (:func:`mtlnb.camera_primus.study.primus_study`'s layout)."""
    if run is not None:
        path = Path(run)
        if not path.is_dir():
            raise ValueError(f"{path}: no such run folder")
        if (path / runs.RUN_INFO).is_file():
            raise ValueError(f"{path} is one network's training run; pass its parent, the fold folder that holds "
                             "omr/ and a2s/ (e.g. data/primus-mini/models/fold0)")
        return path
    if profile is None:
        raise ValueError("name the trained networks: a run folder (--run), or a profile and fold (--profile, --fold)")
    from mtlnb.core.paths import data_root

    return data_root() / f"primus-{get_profile(profile).name}" / "models" / f"fold{0 if fold is None else fold}"


def _network_dir(fold_dir: Path, name: str, why: str) -> Path:
    run_dir = fold_dir / name
    if not (run_dir / "best.pt").is_file():
        raise ValueError(f"{fold_dir} has no trained {name.upper()} network ({run_dir / 'best.pt'} is missing), "
                         f"which {why} needs: train it first ({runs.run_maker(name)})")
    return run_dir


def _study_corpus(study_root: Path) -> Path:
    """The corpus a study folder was built from: ``<study>/Corpus``, else its feature cache's corpus."""
    if (study_root / "Corpus").is_dir():
        return study_root
    for manifest in sorted(study_root.glob(f"features-*/{CACHE_MANIFEST}")):
        recorded = Path(io.read_json(manifest).get("corpus_root", ""))
        if (recorded / "Corpus").is_dir() or recorded.name == "Corpus":
            return recorded
    raise ValueError(f"{study_root}: the corpus of this study is not found (no Corpus/ here, and no feature cache "
                     "naming one); the symbol LM needs the fold's training transcripts")


def fold_transcripts(study_root: Path, fold: int) -> tuple[list[list[str]], list[list[str]]]:
    """The training and validation transcripts of a study's fold (the LM's data and its order selection)."""
    corpus = primus.PrimusCorpus(_study_corpus(study_root))
    out = []
    for split in ("train", "val"):
        listed = study_root / "folds" / f"{split}_gt_fold{fold}.dat"
        if not listed.is_file():
            raise ValueError(f"{listed} is missing: the study's folds are written when its notebooks run "
                             "(notebook 01 or 02)")
        out.append([corpus.tokens(sid) for sid in primus.read_id_list(listed)])
    return out[0], out[1]


def _tuned_readoffs(study_root: Path, fold: int, run_dirs: dict[str, Path]) -> dict | None:
    """Notebook 04's read-offs of this fold, where it fused these very networks; else None."""
    settings = study_root / "late_fusion" / f"fold{fold}" / PAIR / "test" / "settings.json"
    if not settings.is_file():
        return None
    saved = io.read_json(settings)
    try:
        same = all(saved["posteriors"][m] == file_stamp(posteriors_path(d, "test")) for m, d in run_dirs.items())
        if not same or not saved.get("readoffs"):
            return None
        return {m: pipeline.Readoff(*(float(v) for v in saved["readoffs"][m].split(","))) for m in run_dirs}
    except (KeyError, OSError, ValueError):
        return None


def load_fold(fold_dir: str | os.PathLike, audio: bool = True) -> FoldModels:
    """Read a fold's OMR (and A2S, with ``audio``) network and fit its symbol LM.

    Raises
    ------
    ValueError
        A missing network (naming the folder and how to train it), networks of another profile or fold than each
        other, or an OMR and an A2S of different vocabularies (naming both ``vocabulary.json`` files).
    """
    fold_dir = Path(fold_dir)
    if not fold_dir.is_dir():
        raise ValueError(f"{fold_dir}: no such fold folder; train the study first (python -m mtlnb reproduce), or "
                         "name a trained fold with --run (a real archive's: data/primus-real-<profile>/models/fold<k>)")
    dirs = {"omr": _network_dir(fold_dir, "omr", "the score image")}
    if audio:
        dirs["a2s"] = _network_dir(fold_dir, "a2s", "the recording")
    infos = {m: io.read_json(d / runs.RUN_INFO) for m, d in dirs.items() if (d / runs.RUN_INFO).is_file()}
    if len({(i.get("profile"), i.get("fold")) for i in infos.values()}) > 1:
        trained = ", ".join(f"{m}: profile {i.get('profile')}, fold {i.get('fold')}" for m, i in infos.items())
        raise ValueError(f"{fold_dir}: its networks were trained with other profiles or folds: {trained}")
    nets = {m: sim2real.load_run(d) for m, d in dirs.items()}  # sized by the profile each run.json names
    if audio and nets["omr"].vocabulary != nets["a2s"].vocabulary:
        only_omr = sorted(set(nets["omr"].vocabulary.symbols) - set(nets["a2s"].vocabulary.symbols))
        only_a2s = sorted(set(nets["a2s"].vocabulary.symbols) - set(nets["omr"].vocabulary.symbols))
        raise ValueError(f"vocabulary mismatch: {dirs['omr'] / runs.VOCABULARY} and {dirs['a2s'] / runs.VOCABULARY} "
                         f"differ (only OMR: {only_omr[:5]}, only A2S: {only_a2s[:5]}; {len(nets['omr'].vocabulary)} "
                         f"vs {len(nets['a2s'].vocabulary)} symbols); fusion needs both networks of one fold's "
                         "training vocabulary")
    info = infos.get("omr", {})
    profile = get_profile(info.get("profile"))
    fold = int(info.get("fold", fold_dir.name.removeprefix("fold") or 0))
    study_root = fold_dir.parent.parent
    train, val = fold_transcripts(study_root, fold)
    config = pipeline.LateFusionConfig.for_profile(profile)
    symbols = sorted(set().union(*(set(n.vocabulary.symbols) for n in nets.values())))
    lm, _ = pipeline.select_lm_once(train, val, profile.fusion.lm_order, symbols, config)
    tuned = _tuned_readoffs(study_root, fold, {m: fold_dir / m for m in ("omr", "a2s")})
    readoffs = tuned or {m: pipeline.FAITHFUL for m in ("omr", "a2s")}
    source = ("chosen on the validation set by notebook 04" if tuned else
              "Kaldi's defaults (acoustic scale 1, no insertion penalty; notebook 04 has not fused these networks)")
    return FoldModels(fold_dir, fold, profile, nets["omr"], nets.get("a2s"), lm, readoffs, source)


# -- decoding -------------------------------------------------------------------------------------------------------

def log_posteriors(trained: runs.TrainedNetwork, x: np.ndarray) -> np.ndarray:
    """float32 ``(T, |V|+1)`` natural-log CTC posteriors of one input ``(H, W)`` (blank last)."""
    with torch.no_grad():
        out = trained.model(torch.from_numpy(np.ascontiguousarray(x))[None, None])
    frames = int(trained.model.output_lengths(x.shape[1]))
    return out[0, :frames].numpy().astype(np.float32)


def _renderable_midi(tokens: Sequence[str]) -> tuple[object, list[str]]:
    """The MIDI of ``tokens``, leaving out multi-rests before any time signature (their length is unknown); returns
    the MIDI and a note per left-out token."""
    try:
        return semantic.semantic_to_midi(tokens), []
    except ValueError:
        pass
    kept, dropped, meter = [], [], False
    for i, tok in enumerate(tokens):
        meter |= tok.startswith("timeSignature-")
        if tok.startswith("multirest-") and not meter:
            dropped.append(f"{tok} at position {i} (before any time signature) left out of the MIDI")
            continue
        kept.append(tok)
    return semantic.semantic_to_midi(kept), dropped


def write_transcription(out: Path, name: str, tokens: Sequence[str]) -> dict:
    """``<name>.semantic``, ``.mid``, ``.mei`` and ``.png`` of one transcription; returns its summary entry."""
    io.write_text(out / f"{name}.semantic", "".join(f"{t}\t" for t in tokens) + "\n")
    midi, notes = _renderable_midi(tokens)
    with io.atomic_path(out / f"{name}.mid") as tmp:
        midi.write(str(tmp))
    engraved = engraving.engrave(semantic.semantic_to_pae(tokens))
    io.write_text(out / f"{name}.mei", engraved.mei)
    io.write_bytes(out / f"{name}.png", engraved.png)
    return {"tokens": list(tokens), "files": [f"{name}{s}" for s in OUTPUT_SUFFIXES], "notes": notes,
            "seconds_of_music": round(float(midi.get_end_time()), 3)}


@dataclass
class Transcription:
    """What :func:`transcribe` wrote: every transcription's symbols, and the summary file's content."""

    out: Path
    tokens: dict[str, list[str]]  # name ("omr", "a2s", "fused") -> symbols
    summary: dict

    def files(self) -> list[Path]:
        return [self.out / f"{n}{s}" for n in self.tokens for s in OUTPUT_SUFFIXES] + [self.out / SUMMARY]


def transcribe(image: str | os.PathLike, audio: str | os.PathLike | None = None, *,
               run: str | os.PathLike | None = None, profile: str | None = None, fold: int | None = None,
               alpha: float = 0.5, out: str | os.PathLike) -> Transcription:
    """Transcribe a score photo (and a recording of it) with a fold's trained networks; write the files listed in
    the module docstring to ``out``.

    Parameters
    ----------
    image : path
        A photo or scan of **one staff** (an incipit, as Camera-PrIMuS's images): any format OpenCV reads.
    audio : path, optional
        A recording of the same music (WAV, FLAC, OGG; any rate, mono or stereo).  Without it: OMR alone.
    run : path, optional
        The fold folder of a study, ``<study>/models/fold<k>`` (holds ``omr/`` and ``a2s/``).
    profile, fold : optional
        Instead of ``run``: the synthetic study of ``profile`` (``data/primus-<profile>``) and its fold.
    alpha : float in [0, 1]
        OMR weight of the fusion (the thesis's 0.5).
    out : path
        Output folder (created; files in it are replaced).

    Raises
    ------
    ValueError
        An unreadable image or recording (naming the file), a missing network, a vocabulary mismatch.
    """
    alpha = fusion._check_alpha(alpha, "transcribe")
    t0 = time.perf_counter()
    x_image = read_image(image)  # inputs first: a wrong file fails before any network is read
    x_audio = read_audio(audio) if audio is not None else None
    models = load_fold(fold_dir_of(run, profile, fold), audio=audio is not None)
    decoder = pipeline.profile_decoder(models.profile.fusion)
    nets = {"omr": models.omr, "a2s": models.a2s} if audio is not None else {"omr": models.omr}
    inputs = {"omr": x_image, "a2s": x_audio}
    logp = {m: log_posteriors(net, inputs[m]) for m, net in nets.items()}
    lattices = {m: pipeline.rescaled(WordGraphDecoder(net.vocabulary.symbols, models.lm, decoder).decode(logp[m]),
                                     *models.readoffs[m]) for m, net in nets.items()}
    tokens = {"omr": list(lattices["omr"].mbr().tokens)}
    if audio is not None:
        tokens["a2s"] = list(lattices["a2s"].mbr().tokens)
        tokens["fused"] = list(fusion.lattice_combination_mbr(lattices["omr"], lattices["a2s"], alpha))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {name: write_transcription(out, name, toks) for name, toks in tokens.items()}
    for m, net in nets.items():
        written[m]["greedy"] = greedy_decode(logp[m], net.vocabulary.symbols)
    summary = {
        "image": str(Path(image).resolve()), "audio": str(Path(audio).resolve()) if audio is not None else None,
        "fold_dir": str(models.fold_dir.resolve()), "profile": models.profile.name, "fold": models.fold,
        "checkpoints": {m: {"file": str(net.checkpoint), "epoch": net.epoch} for m, net in nets.items()},
        "alpha": alpha if audio is not None else None,
        "method": "MBR decoding of the α-weighted union of the two word graphs (lattice_combination_mbr)",
        "lm_order": models.lm.order, "readoffs": {m: list(models.readoffs[m]) for m in nets},
        "readoff_source": models.readoff_source, "transcriptions": written,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    io.write_json(out / SUMMARY, summary)
    return Transcription(out, tokens, summary)
