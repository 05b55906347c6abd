"""Late fusion of one fold: the symbol LM, both word graphs of every sample, the five fusion methods over α, and
the SER tables (thesis §"Fusion methods"; the baseline's Kaldi + SRILM recipe, Alfaro-Contreras et al. 2023).

Pipeline (:func:`run_fold` for a study's fold, :func:`run` for any pair of posteriors files)
---------------------------------------------------------------------------------------------
0. **Posteriors** (:func:`fold_posteriors`): both networks' ``posteriors_<split>.npz``, which must exist: this
   stage trains nothing, and names the missing run and the notebook or call that makes it
   (:func:`mtlnb.camera_primus.networks.runs.ensure_run`).  Nor does it build the corpus.
1. **LM** (:func:`select_lm`): interpolated Witten-Bell (the thesis's smoothing) on the training fold's
   transcripts, the network vocabulary declared.  Order: the profile's ``fusion.lm_order`` at most.
2. **Word graphs**: :class:`mtlnb.camera_primus.decoding.search.WordGraphDecoder` with the baseline's Kaldi recipe
   (acoustic scale 2.5, beam 15, lattice beam 12) on each sample's OMR and A2S log-posteriors
   (``posteriors_<split>.npz`` of notebooks 02–03), in a process pool over samples.
3. **Read-off** (:func:`tune_readoff`): on the validation split, each modality's LM best path at every
   acoustic scale × insertion penalty of a small grid (LM scale 1); see "Read-off" below.
4. **Fusion** on the test split: :func:`mtlnb.camera_primus.fusion.methods.fuse` over the profile's α values for the
   three α methods, one call each for Smith-Waterman and the two lightly-supervised methods.
5. **Tables** (:class:`LateFusionResult`): per-sample outputs, corpus SER per (method, α), unimodal SERs.

Choices where the papers are silent
-----------------------------------
- **LM order on little data.** Witten-Bell never fails to estimate (the baseline's Kneser-Ney did, and fell back
  to order 2 for its small scenarios), but on little data higher orders overfit: on the ``mini`` corpus (1,020
  training incipits, 778 symbols) validation perplexity is 50 at order 2 and 69 at order 5.  So the order is the
  one in ``min_order … lm_order`` with the lowest validation perplexity (``order_selection="validation"``; ties
  to the lower order); ``"fixed"`` keeps ``lm_order``.  An order whose fit raises (Kneser-Ney's discounts, when
  ``smoothing="kneser_ney"``) is skipped, as the baseline stepped down.  ``min_order`` is 2, the baseline's
  smallest.
- **Read-off (acoustic scale and insertion penalty).** The baseline searched at acoustic scale 2.5 but read its
  lattices with Kaldi's tool defaults (acoustic scale 1, LM scale 1, no insertion penalty: ``lattice-best-path``,
  ``lattice-combine``, ``lattice-mbr-decode`` without scale options), so the LM weighs 2.5× more in the read-off
  than in the search; its recipe defines ``WIP=-0.8`` but passes it to no tool.  The thesis ran "a grid search in
  the word-graph stage" without saying over what.  Here ``readoff="tuned"`` (the default) picks, per modality,
  the :class:`Readoff` of ``scale_grid × penalty_grid`` whose LM best path has the lowest **validation** SER
  (ties: the scale nearest the decoding scale, then the penalty nearest 0) -- Kaldi's scoring idiom
  (``lattice-scale --inv-acoustic-scale=LMWT | lattice-add-penalty --word-ins-penalty=WIP``, both swept on a
  development set); ``readoff="faithful"`` reads off at (1.0, 0) as the baseline did.  Both are always reported:
  the grid is evaluated on validation and test.  Why the penalty: the LM costs about 4 nats per symbol, so at
  read-off scale 1 it turns every uncertain symbol into a deletion (mini OMR, 80 validation samples: greedy SER
  38.9 % with 15 deletions per 1,000 symbols; LM best path at (1.0, 0) 46.7 % with 205).  The chosen read-off
  applies to every read-off of that modality's lattice in every fusion method (:func:`rescaled` bakes it into
  the lattice, so that ``FusionConfig``'s read-off at (1, 1) sees it); the sausage LM scales of the
  confusion-network method stay the baseline's.
- **Validation set size.** ``max_samples`` (the profile's ``fusion.max_test_samples``) caps the decoded
  validation split as well as the test split: both are decoded alike.
- **Smoke beams.** ``smoke`` networks are barely trained (uniform posteriors), which makes the baseline's search
  explore every symbol at every frame; ``smoke``'s :class:`mtlnb.profiles.FusionProfile` sets narrow beams, which
  :meth:`LateFusionConfig.for_profile` reads (:func:`profile_decoder`), so that CI stays fast.  ``mini`` and
  ``paper`` use the baseline's.
- **"Best α"** in :meth:`LateFusionResult.summary` is the test oracle (the α sweep the baseline reported); the
  thesis fixed α = 0.5, reported beside it.

Cache (resumable)
-----------------
Results go to ``cache_dir/<split>/shard-NNNNN.json``, ``shard_size`` samples each, written atomically as they
complete; a rerun reuses every shard whose key matches.  The key hashes everything a shard depends on: its
sample ids and references, the posteriors files (path, size, modification time: a retrained network writes a new
file), the LM (settings, chosen order, a hash of its training transcripts), the decoder and fusion settings, the
read-offs, the read-off grid, α values and methods.  Anything else is a stale shard and is recomputed.  The
settings of the current run are written to ``cache_dir/<split>/settings.json`` for reading.
Word graphs have a cache of their own, shared by a fold's pairs (``lattice_cache_dir``):
:mod:`mtlnb.camera_primus.decoding.lattice_store`.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from mtlnb.camera_primus.fusion import methods as fusion
from mtlnb.core import io
from mtlnb.camera_primus.decoding import lattice_store
from mtlnb.camera_primus import metrics
from mtlnb.camera_primus.networks import runs
from mtlnb.camera_primus.networks.ctc_tasks import load_posteriors, posteriors_path
from mtlnb.camera_primus.fusion.methods import FusionConfig
from mtlnb.camera_primus.decoding.ngram_lm import NGramLM
from mtlnb.camera_primus.decoding.lattice import Lattice
from mtlnb.camera_primus.decoding.search import DecoderConfig, WordGraphDecoder, greedy_decode

MODALITIES = ("omr", "a2s")
SPLITS = ("val", "test")
UNIMODAL = ("greedy_omr", "greedy_a2s", "best_path_omr", "best_path_a2s")  # method names of the unimodal rows
READOFFS = ("tuned", "faithful")
CACHE_FORMAT = "mtlnb.late-fusion-shard/1"
ALL_METHODS = tuple(fusion.METHODS)


class Readoff(NamedTuple):
    """How a modality's lattice is read off: each arc scores ``acoustic_scale · acoustic + graph`` plus
    ``insertion_penalty`` if it carries a symbol (LM scale 1).  The penalty has :class:`DecoderConfig`'s sign
    (added to the log-score: > 0 favours more symbols; Kaldi's ``--word-ins-penalty`` is its negative)."""

    acoustic_scale: float
    insertion_penalty: float = 0.0

    @property
    def key(self) -> str:
        return f"{float(self.acoustic_scale)!r},{float(self.insertion_penalty)!r}"


FAITHFUL = Readoff(1.0, 0.0)  # Kaldi's lattice-tool defaults, which the baseline never changed


@dataclass(frozen=True)
class LateFusionConfig:
    """Settings of a fold's late-fusion run (the profile supplies the LM order, α values and sample cap)."""

    smoothing: str = "witten_bell"  # the thesis's LM smoothing ("kneser_ney": the baseline's, fails on little data)
    order_selection: str = "validation"  # "validation": order ≤ lm_order with the lowest val perplexity; "fixed"
    min_order: int = 2  # lowest order tried; the baseline's small scenarios used 2
    readoff: str = "tuned"  # "tuned": per-modality read-off from the val grid; "faithful": Kaldi's (1.0, 0)
    scale_grid: tuple[float, ...] = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)  # read-off acoustic scales tried (LM scale 1);
    # 1.0 is the baseline's read-off, 2.5 the search's scale; beyond 4 the LM barely counts (best path ≈ greedy)
    penalty_grid: tuple[float, ...] = (-1.0, 0.0, 1.0, 2.0, 3.0)  # read-off insertion penalties tried (per symbol,
    # log units, > 0 favours symbols): the LM costs ~4 nats per symbol and turns uncertain symbols into deletions
    decoder: DecoderConfig = field(default_factory=DecoderConfig)  # the baseline's Kaldi search (2.5 / 15 / 12)
    fusion: FusionConfig = field(default_factory=FusionConfig)  # the baseline's fusion settings
    methods: tuple[str, ...] = ALL_METHODS  # every fusion method
    shard_size: int = 64  # samples per cache file: small enough that an interruption loses little

    @classmethod
    def for_profile(cls, profile, **overrides) -> "LateFusionConfig":
        """The configuration a profile runs with: the defaults, except the search beams its
        :class:`mtlnb.profiles.FusionProfile` sets (``decoder_beam``, ``decoder_lattice_beam``,
        ``decoder_max_active``; only ``smoke`` does); ``overrides`` replace fields."""
        if "decoder" not in overrides:
            overrides["decoder"] = profile_decoder(profile.fusion)
        return cls(**overrides)

    def __post_init__(self):
        if self.order_selection not in ("validation", "fixed"):
            raise ValueError(f"LateFusionConfig.order_selection must be 'validation' or 'fixed', "
                             f"got {self.order_selection!r}")
        if self.readoff not in READOFFS:
            raise ValueError(f"LateFusionConfig.readoff must be one of {READOFFS}, got {self.readoff!r}")
        if self.min_order < 1:
            raise ValueError(f"LateFusionConfig.min_order must be ≥ 1, got {self.min_order}")
        if not self.scale_grid or not all(s > 0 for s in self.scale_grid):
            raise ValueError(f"LateFusionConfig.scale_grid must be non-empty positive scales, got {self.scale_grid}")
        if not self.penalty_grid or not all(math.isfinite(p) for p in self.penalty_grid):
            raise ValueError(f"LateFusionConfig.penalty_grid must be non-empty finite values, got {self.penalty_grid}")
        unknown = [m for m in self.methods if m not in fusion.METHODS]
        if unknown:
            raise ValueError(f"LateFusionConfig.methods: unknown {unknown}; choose from {list(fusion.METHODS)}")
        if self.shard_size < 1:
            raise ValueError(f"LateFusionConfig.shard_size must be ≥ 1, got {self.shard_size}")

    def grid(self) -> tuple[Readoff, ...]:
        """Every read-off tried on validation: the product of the two grids."""
        return tuple(Readoff(float(s), float(p)) for p in self.penalty_grid for s in self.scale_grid)


def profile_decoder(fusion_profile) -> DecoderConfig:
    """The word-graph search of a :class:`mtlnb.profiles.FusionProfile`: :class:`DecoderConfig`'s defaults (the
    baseline's), with the beams the profile sets (its ``decoder_*`` fields that are not None)."""
    beams = {"beam": fusion_profile.decoder_beam, "lattice_beam": fusion_profile.decoder_lattice_beam,
             "max_active": fusion_profile.decoder_max_active}
    return DecoderConfig(**{k: v for k, v in beams.items() if v is not None})


# ---------------------------------------------------------------------------------------------------------------
# LM


def select_lm(train: Sequence[Sequence[str]], val: Sequence[Sequence[str]], max_order: int,
              vocabulary: Sequence[str] = (), config: LateFusionConfig | None = None) -> tuple[NGramLM, pd.DataFrame]:
    """Fit the word-graph LM, choosing its order (see the module notes).

    Parameters
    ----------
    train, val : sequences of symbol sequences
        Training-fold transcripts (fitted) and validation transcripts (perplexity only).
    max_order : int
        The profile's ``fusion.lm_order``.
    vocabulary : sequence of str
        Symbols the networks can emit (declared, so that each has a probability).

    Returns
    -------
    lm : NGramLM
    orders : DataFrame
        One row per order tried: ``order``, ``val_perplexity`` (NaN where the fit failed), ``error``, ``chosen``.
    """
    cfg = config or LateFusionConfig()
    if max_order < 1:
        raise ValueError(f"select_lm: max_order must be ≥ 1, got {max_order}")
    if not train:
        raise ValueError("select_lm: no training transcripts")
    low = min(cfg.min_order, max_order)
    orders = range(max_order, low - 1, -1) if cfg.order_selection == "validation" else range(max_order, 0, -1)
    rows, models = [], {}
    for n in orders:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                model = NGramLM(order=n, smoothing=cfg.smoothing).fit(train, vocabulary=vocabulary)
        except ValueError as err:  # Kneser-Ney discounts undefined on this data: try the next lower order
            rows.append({"order": n, "val_perplexity": math.nan, "error": str(err).splitlines()[0]})
            continue
        models[n] = model
        rows.append({"order": n, "val_perplexity": model.perplexity(val) if val else math.nan, "error": ""})
        if cfg.order_selection == "fixed":
            break  # the highest order that fits
    if not models:
        raise ValueError(f"select_lm: no order in {list(orders)} could be fitted: {rows[-1]['error']}")
    table = pd.DataFrame(rows).sort_values("order").reset_index(drop=True)
    fitted = table[table.order.isin(models)]
    if cfg.order_selection == "validation" and fitted.val_perplexity.notna().any():
        chosen = int(fitted.loc[fitted.val_perplexity.idxmin(), "order"])  # idxmin: first = lowest order on ties
    else:
        chosen = max(models)
    table["chosen"] = table.order == chosen
    return models[chosen], table


_LM_MEMO: dict[str, tuple[NGramLM, pd.DataFrame]] = {}
_LM_MEMO_SIZE = 8  # LMs remembered per process (one per fold is what a notebook needs)


def select_lm_once(train: Sequence[Sequence[str]], val: Sequence[Sequence[str]], max_order: int,
                   vocabulary: Sequence[str] = (),
                   config: LateFusionConfig | None = None) -> tuple[NGramLM, pd.DataFrame]:
    """:func:`select_lm`, remembered for this process by its inputs: a fold's scenarios fuse 9 × 2 (OMR, A2S) pairs
    that all fit the same LM (the training fold's transcripts, chosen on the validation transcripts).  The LM is
    returned shared (nothing downstream changes it); the order table as a copy."""
    cfg = config or LateFusionConfig()
    key = io.sha256_json({"train": [list(t) for t in train], "val": [list(v) for v in val], "max_order": max_order,
                          "vocabulary": list(vocabulary), "smoothing": cfg.smoothing, "min_order": cfg.min_order,
                          "order_selection": cfg.order_selection})
    if key not in _LM_MEMO:
        if len(_LM_MEMO) >= _LM_MEMO_SIZE:
            _LM_MEMO.pop(next(iter(_LM_MEMO)))  # the oldest
        _LM_MEMO[key] = select_lm(train, val, max_order, vocabulary, cfg)
    lm, orders = _LM_MEMO[key]
    return lm, orders.copy()


def lm_fingerprint(lm: NGramLM, train: Sequence[Sequence[str]]) -> str:
    """A stable hash of what the LM's scores depend on (settings, order, vocabulary, training transcripts)."""
    h = hashlib.sha256()
    for seq in train:
        h.update(" ".join(seq).encode("utf-8"))
        h.update(b"\n")
    return io.sha256_json({"order": lm.order, "smoothing": lm.effective_smoothing, "unk": lm.config.unk,
                           "vocabulary": list(lm.vocabulary), "transcripts": h.hexdigest()})


# ---------------------------------------------------------------------------------------------------------------
# lattices


def rescaled(lattice: Lattice, acoustic_scale: float = 1.0, insertion_penalty: float = 0.0) -> Lattice:
    """The lattice with its acoustic scores multiplied by ``acoustic_scale`` and ``insertion_penalty`` added to the
    graph score of every symbol arc: read off at (1, 1) it scores arcs as :class:`Readoff` says, so every fusion
    method (which reads off at ``FusionConfig``'s scales, 1 and 1) sees the chosen read-off.  The penalty is part
    of the graph score, so an LM scale of 0 (the A2S sausage of the confusion-network method) drops it too, as
    Kaldi's ``lattice-add-penalty`` would."""
    if not acoustic_scale > 0:
        raise ValueError(f"rescaled: acoustic_scale must be > 0, got {acoustic_scale}")
    if acoustic_scale == 1.0 and insertion_penalty == 0.0:
        return lattice
    return replace(lattice, acoustic=lattice.acoustic * acoustic_scale,
                   graph=lattice.graph + insertion_penalty * (lattice.symbol >= 0), _cache={})


def _vocabulary_of(path: Path) -> list[str]:
    with load_posteriors(path) as post:
        return list(post.vocabulary.symbols)


# Worker state: set once per process by _init (the LM and two decoders are large: never sent per task).
_STATE: dict = {}


def _init(paths: dict, vocabularies: dict, lm, decoder: DecoderConfig) -> None:
    _close_state()
    _STATE["post"] = {m: load_posteriors(paths[m]) for m in MODALITIES}
    _STATE["decoders"] = {m: WordGraphDecoder(vocabularies[m], lm, decoder) for m in MODALITIES}
    _STATE["shards"] = {}  # modality -> the LatticeShard last read (tasks come in shard order)


def _close_state() -> None:
    for post in _STATE.get("post", {}).values():
        post.close()
    for shard in _STATE.get("shards", {}).values():
        shard.close()
    _STATE.clear()


def _stored_lattice(m: str, path: str, sid: str) -> Lattice | None:
    """Sample ``sid``'s ``m`` lattice from the shard at ``path``; None if it cannot be read (then decode)."""
    shard = _STATE["shards"].get(m)
    try:
        if shard is None or str(shard.path) != path:
            if shard is not None:
                shard.close()
                del _STATE["shards"][m]
            shard = _STATE["shards"][m] = lattice_store.LatticeShard(path)
        return shard[sid]
    except lattice_store.READ_ERRORS:  # replaced or damaged since the parent checked it
        return None


def _lattices(sid: str) -> dict[str, Lattice]:
    return {m: _STATE["decoders"][m].decode(_STATE["post"][m][sid]) for m in MODALITIES}


def _process(task: tuple) -> dict:
    """Everything one sample contributes: greedy and best-path outputs, and the fused outputs when asked.

    ``stored`` (None: no lattice cache) maps a modality to the shard holding this sample's lattice, or to None:
    then the lattice is decoded and returned under ``"_lattices"`` for the parent to store."""
    sid, grid, readoffs, alphas, methods, fcfg, stored = task
    t0 = time.perf_counter()
    logp = {m: _STATE["post"][m][sid] for m in MODALITIES}
    lat, fresh, loaded = {}, {}, []
    for m in MODALITIES:
        path = stored.get(m) if stored is not None else None
        lattice = _stored_lattice(m, path, sid) if path is not None else None
        if lattice is not None:
            loaded.append(m)
        else:
            lattice = _STATE["decoders"][m].decode(logp[m])
            if stored is not None and path is None:
                fresh[m] = replace(lattice, _cache={})  # sent back without read-off caches
        lat[m] = lattice
    t1 = time.perf_counter()
    rec = {
        "id": sid,
        "from_lattice_cache": loaded,
        "frames": {m: int(logp[m].shape[0]) for m in MODALITIES},
        "arcs": {m: int(lat[m].num_arcs) for m in MODALITIES},
        "greedy": {m: greedy_decode(logp[m], _STATE["decoders"][m].vocabulary) for m in MODALITIES},
        "best_path": {m: _grid_best_paths(lat[m], grid) for m in MODALITIES},
    }
    if readoffs is not None:
        lo, la = (rescaled(lat[m], *readoffs[m]) for m in MODALITIES)
        with_alpha = [m for m in methods if m in fusion.USES_ALPHA]
        fused = {name: {repr(float(a)): toks for a, toks in out.items()}
                 for name, out in fusion.fuse(lo, la, alphas, with_alpha, fcfg).items()} if with_alpha else {}
        for name in methods:
            if name not in fusion.USES_ALPHA:
                fused[name] = {"nan": fusion.METHODS[name](lo, la, None, fcfg)}
        rec["fused"] = fused
    rec["seconds"] = {"decode": t1 - t0, "total": time.perf_counter() - t0}
    if fresh:
        rec["_lattices"] = fresh
    return rec


def _grid_best_paths(lattice: Lattice, grid: Sequence[Readoff]) -> dict[str, list[str]]:
    """``{readoff.key: best path}`` over the grid (one penalised copy of the lattice per penalty)."""
    out = {}
    for p in sorted({r.insertion_penalty for r in grid}):
        penalised = rescaled(lattice, 1.0, p)
        for r in grid:
            if r.insertion_penalty == p:
                out[r.key] = penalised.best_path(r.acoustic_scale, 1.0)
    return out


def _init_worker(*args) -> None:
    """Pool initializer: one BLAS thread, then :func:`_init` (see :func:`_one_blas_thread`)."""
    _one_blas_thread()
    _init(*args)


def _one_blas_thread():
    """Limit BLAS to one thread (returns the limiter; ``restore_original_limits()`` undoes it).  The MBR's tiny
    matrix products spend most of their time waking BLAS threads, and their sums -- hence tied sausage bins --
    depend on the thread count: one thread is faster and gives the same output on every machine."""
    return threadpool_limits(1, user_api="blas")


def _pool_context():
    # fork: workers inherit the LM and imports at no cost (spawn would re-import torch in every worker)
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _decode_split(split: str, ids: list[str], references: Mapping[str, Sequence[str]], paths: dict,
                  vocabularies: dict, lm, key_base: dict, readoffs: dict | None, alphas: Sequence[float],
                  cfg: LateFusionConfig, cache_dir: Path | None, jobs: int, progress: bool,
                  lattice_cache_dir: Path | None = None) -> list[dict]:
    """Records of every sample of a split (in ``ids`` order), from the cache where up to date (see the module
    notes); lattices from the lattice cache where stored (:mod:`mtlnb.camera_primus.decoding.lattice_store`)."""
    grid = cfg.grid()
    fused = readoffs is not None
    settings = dict(key_base, split=split, posteriors={m: lattice_store.file_stamp(paths[m]) for m in MODALITIES},
                    grid=[r.key for r in grid], readoffs={m: r.key for m, r in readoffs.items()} if fused else None,
                    alphas=[float(a) for a in alphas] if fused else None,
                    methods=list(cfg.methods) if fused else None,
                    fusion=asdict(cfg.fusion) if fused else None)
    shards = [ids[i:i + cfg.shard_size] for i in range(0, len(ids), cfg.shard_size)]
    keys = [io.sha256_json(dict(settings, ids=s, refs=[list(references[i]) for i in s])) for s in shards]
    folder = Path(cache_dir) / split if cache_dir is not None else None
    done: dict[int, list[dict]] = {}
    if folder is not None:
        io.write_json(folder / "settings.json", settings)
        for k, key in enumerate(keys):
            f = folder / f"shard-{k:05d}.json"
            if f.exists():
                try:
                    data = io.read_json(f)
                except (OSError, ValueError):
                    continue  # unreadable: recompute
                if data.get("format") == CACHE_FORMAT and data.get("key") == key:
                    done[k] = data["records"]
    todo = [k for k in range(len(shards)) if k not in done]
    # lattice shards: {k: {modality: path}} and which of them already hold the lattices
    lat_paths, lat_ok = {}, {}
    if lattice_cache_dir is not None and todo:
        lat_keys = {m: lattice_store.lattice_key(paths[m], key_base["lm"], cfg.decoder) for m in MODALITIES}
        for m in MODALITIES:
            lattice_store.save_settings(lattice_cache_dir, lat_keys[m], paths[m], key_base["lm"], cfg.decoder)
        for k in todo:
            lat_paths[k] = {m: lattice_store.lattice_shard_path(lattice_cache_dir, lat_keys[m], shards[k])
                            for m in MODALITIES}
            lat_ok[k] = {m: lattice_store.usable_shard(lat_paths[k][m], lat_keys[m], shards[k]) for m in MODALITIES}

    def stored(k: int) -> dict | None:
        if k not in lat_paths:
            return None
        return {m: str(lat_paths[k][m]) if lat_ok[k][m] else None for m in MODALITIES}

    tasks = [(sid, grid, readoffs, tuple(alphas), tuple(cfg.methods), cfg.fusion, stored(k))
             for k in todo for sid in shards[k]]
    if tasks:
        bar = tqdm(total=len(tasks), desc=f"{split}: word graphs" + (" + fusion" if fused else ""),
                   disable=not progress, leave=False)
        init_args = (paths, vocabularies, lm, cfg.decoder)
        if jobs > 1:
            pool, limits = ProcessPoolExecutor(max_workers=jobs, mp_context=_pool_context(),
                                               initializer=_init_worker, initargs=init_args), None
            results = pool.map(_process, tasks, chunksize=1)
        else:
            pool, limits = None, _one_blas_thread()
            _init(*init_args)
            results = map(_process, tasks)
        try:
            it = iter(results)
            for k in todo:
                recs = []
                for _ in shards[k]:
                    recs.append(next(it))
                    bar.update(1)
                fresh = [r.pop("_lattices", {}) for r in recs]
                for m in MODALITIES:
                    if k in lat_paths and not lat_ok[k][m]:
                        lattice_store.save_lattices(lat_paths[k][m], lat_keys[m], shards[k], [f[m] for f in fresh])
                done[k] = recs
                if folder is not None:
                    io.write_json(folder / f"shard-{k:05d}.json",
                                  {"format": CACHE_FORMAT, "key": keys[k], "ids": shards[k], "records": recs})
        finally:
            bar.close()
            if limits is not None:
                limits.restore_original_limits()
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            else:
                _close_state()
    return [r for k in range(len(shards)) for r in done[k]]


# ---------------------------------------------------------------------------------------------------------------
# read-off tuning and tables


def _corpus_ser(hyps: list[list[str]], refs: list[list[str]]) -> tuple[int, int, float]:
    errors = int(metrics.edit_distances(hyps, refs).sum())
    ref_len = sum(len(r) for r in refs)
    return errors, ref_len, 100.0 * errors / ref_len


def readoff_grid(records: Sequence[dict], references: Mapping[str, Sequence[str]], split: str) -> pd.DataFrame:
    """SER of each modality's greedy decoding and of its LM best path at every read-off of the grid.

    Returns
    -------
    DataFrame
        Columns ``split, modality, decoder ("greedy" | "best_path"), acoustic_scale, insertion_penalty (both NaN
        for greedy), errors, ref_len, ser`` (percent).
    """
    refs = [list(references[r["id"]]) for r in records]
    rows = []
    for m in MODALITIES:
        e, n, s = _corpus_ser([r["greedy"][m] for r in records], refs)
        rows.append({"split": split, "modality": m, "decoder": "greedy", "acoustic_scale": math.nan,
                     "insertion_penalty": math.nan, "errors": e, "ref_len": n, "ser": s})
        for key in records[0]["best_path"][m]:
            e, n, s = _corpus_ser([r["best_path"][m][key] for r in records], refs)
            scale, penalty = (float(v) for v in key.split(","))
            rows.append({"split": split, "modality": m, "decoder": "best_path", "acoustic_scale": scale,
                         "insertion_penalty": penalty, "errors": e, "ref_len": n, "ser": s})
    return pd.DataFrame(rows)


def tune_readoff(grid: pd.DataFrame, decoding_scale: float = DecoderConfig.acoustic_scale) -> dict[str, Readoff]:
    """Per modality, the read-off with the lowest best-path SER.  Ties go to the acoustic scale nearest
    ``decoding_scale`` (the search's), then to the penalty nearest 0, then to the smaller values.

    Parameters
    ----------
    grid : DataFrame
        :func:`readoff_grid` of the **validation** split.
    """
    if set(grid.split) - {"val"}:
        raise ValueError(f"tune_readoff: tune on the validation split only, got splits {sorted(set(grid.split))}")
    out = {}
    for m in MODALITIES:
        rows = grid[(grid.modality == m) & (grid.decoder == "best_path")]
        if rows.empty:
            raise ValueError(f"tune_readoff: no best-path rows for {m}")
        best = min(rows.itertuples(), key=lambda r: (r.errors, abs(r.acoustic_scale - decoding_scale),
                                                     abs(r.insertion_penalty), r.acoustic_scale, r.insertion_penalty))
        out[m] = Readoff(float(best.acoustic_scale), float(best.insertion_penalty))
    return out


def _alpha_value(key: str) -> float:
    return math.nan if key == "nan" else float(key)


def per_sample_frame(records: Sequence[dict], references: Mapping[str, Sequence[str]],
                     readoffs: Mapping[str, Readoff], methods: Sequence[str] = ALL_METHODS) -> pd.DataFrame:
    """Tidy per-sample outputs of the test split: one row per (sample, method, α).

    Columns ``id, method, alpha`` (NaN for methods without α and the unimodal rows), ``output`` (space-separated
    symbols), ``errors`` (edit distance to the reference), ``ref_len``.  Methods: :data:`UNIMODAL` (greedy, and
    the LM best path at the read-off of ``readoffs``) and the fusion ``methods``, in that order.
    """
    rows = []
    for r in records:
        ref = list(references[r["id"]])
        outs = [("greedy_omr", math.nan, r["greedy"]["omr"]), ("greedy_a2s", math.nan, r["greedy"]["a2s"])]
        outs += [(f"best_path_{m}", math.nan, r["best_path"][m][readoffs[m].key]) for m in MODALITIES]
        fused = r.get("fused", {})
        for name in methods:  # in a fixed order: cached records come back with sorted keys
            by_alpha = fused.get(name, {})
            outs += [(name, _alpha_value(a), by_alpha[a]) for a in sorted(by_alpha, key=_alpha_value)]
        for name, alpha, toks in outs:
            rows.append({"id": r["id"], "method": name, "alpha": alpha, "output": " ".join(toks),
                         "ref_len": len(ref), "_hyp": toks, "_ref": ref})
    df = pd.DataFrame(rows)
    df["errors"] = metrics.edit_distances(list(df.pop("_hyp")), list(df.pop("_ref")))
    return df[["id", "method", "alpha", "output", "errors", "ref_len"]]


def ser_table(per_sample: pd.DataFrame) -> pd.DataFrame:
    """Corpus SER per (method, α), ``100 · Σ errors / Σ ref_len``: columns
    ``method, alpha, errors, ref_len, ser``."""
    g = per_sample.groupby(["method", "alpha"], dropna=False, sort=False)[["errors", "ref_len"]].sum()
    g = g.reset_index()
    g["ser"] = 100.0 * g.errors / g.ref_len
    return g


@dataclass
class LateFusionResult:
    """What :func:`run` returns.

    Attributes
    ----------
    lm : NGramLM
    lm_orders : DataFrame
        :func:`select_lm`'s table (order, val_perplexity, error, chosen).
    readoff : DataFrame
        :func:`readoff_grid` of the validation and the test split, with a ``chosen`` column marking the
        read-off used for fusion.
    readoffs : dict
        :class:`Readoff` used per modality (``{"omr": …, "a2s": …}``).
    tuned_readoffs : dict
        What the validation grid chose (equal to ``readoffs`` unless ``readoff="faithful"``).
    per_sample : DataFrame
        :func:`per_sample_frame` of the test split.
    ser : DataFrame
        :func:`ser_table`: corpus SER per (method, α) on the test split, unimodal rows included.
    references : dict
        ``{sample id: reference symbols}`` of the decoded val and test samples.
    seconds : dict
        Wall time per stage (``lm``, ``val``, ``test``) and mean CPU seconds per test sample (``per_sample``).
    """

    lm: NGramLM
    lm_orders: pd.DataFrame
    readoff: pd.DataFrame
    readoffs: dict
    tuned_readoffs: dict
    per_sample: pd.DataFrame
    ser: pd.DataFrame
    references: dict
    seconds: dict
    paths: dict  # {"omr": {split: path}, "a2s": {split: path}}
    config: LateFusionConfig
    alphas: tuple

    def unimodal(self) -> pd.DataFrame:
        """Greedy and LM-best-path SER per modality and split: greedy, the faithful read-off, the chosen one."""
        g = self.readoff
        faithful = (g.acoustic_scale == FAITHFUL.acoustic_scale) & (g.insertion_penalty == FAITHFUL.insertion_penalty)
        rows = {"greedy": g[g.decoder == "greedy"], "LM best path, faithful (1.0, 0)": g[faithful],
                "LM best path, chosen on val": g[g.chosen]}
        out = pd.concat({k: v.set_index(["modality", "split"]).ser for k, v in rows.items()}, axis=1)
        return out.unstack("split")

    def summary(self, alpha: float = 0.5) -> pd.DataFrame:
        """One row per system: unimodal greedy and LM best path, each fusion method at ``alpha`` and at its best
        α on the test set (an oracle, as the baseline's sweep reported).  ``best α (test)`` is text: the α of the
        lowest SER, every α that ties with it (to 1e-9), or "all tie"; empty where a method has no α."""
        s = self.ser
        rows = []
        for name in UNIMODAL:
            v = s[s.method == name].ser.iloc[0]
            rows.append({"system": name, f"SER at α={alpha:g}": v, "best α (test)": "", "SER at best α": v})
        for name in self.config.methods:
            part = s[s.method == name]
            if part.alpha.isna().all():
                v = part.ser.iloc[0]
                rows.append({"system": name, f"SER at α={alpha:g}": v, "best α (test)": "", "SER at best α": v})
                continue
            at = part[np.isclose(part.alpha, alpha)]
            low = part.ser.min()
            tied = sorted(part.alpha[np.isclose(part.ser, low, rtol=0, atol=1e-9)].tolist())
            best = ("all tie" if len(tied) == len(part) > 1 else
                    ", ".join(f"{a:g}" for a in tied) + (" (tie)" if len(tied) > 1 else ""))
            rows.append({"system": name, f"SER at α={alpha:g}": at.ser.iloc[0] if len(at) else math.nan,
                         "best α (test)": best, "SER at best α": low})
        return pd.DataFrame(rows).set_index("system")

    def lattices(self, sample_id: str, split: str = "test") -> dict[str, Lattice]:
        """Both word graphs of one sample, rebuilt with this run's LM and settings and :func:`rescaled` to the
        read-offs (so their default read-off is the one fusion used)."""
        paths = {m: self.paths[m][split] for m in MODALITIES}
        vocabularies = {m: _vocabulary_of(paths[m]) for m in MODALITIES}
        _init(paths, vocabularies, self.lm, self.config.decoder)
        try:
            lat = _lattices(sample_id)
        finally:
            _close_state()
        return {m: rescaled(lat[m], *self.readoffs[m]) for m in MODALITIES}


# ---------------------------------------------------------------------------------------------------------------
# entry points


def run(omr: Mapping[str, str | os.PathLike], a2s: Mapping[str, str | os.PathLike],
        references: Mapping[str, Mapping[str, Sequence[str]]], train: Sequence[Sequence[str]], *,
        lm_order: int = 5, alphas: Sequence[float] = fusion.DEFAULT_ALPHAS, max_samples: int | None = None,
        config: LateFusionConfig | None = None, cache_dir: str | os.PathLike | None = None, jobs: int | None = None,
        progress: bool = True, lattice_cache_dir: str | os.PathLike | None = None) -> LateFusionResult:
    """Late fusion of one fold from its posteriors files.

    Parameters
    ----------
    omr, a2s : mapping split -> path
        ``posteriors_<split>.npz`` (:mod:`mtlnb.camera_primus.networks.ctc_tasks` format) for ``"val"`` and ``"test"``.
    references : mapping split -> (mapping sample id -> symbols)
        Ground truth of the samples to decode, in order; every id must be in both posteriors files.
    train : sequence of symbol sequences
        Training-fold transcripts (the LM's data).
    lm_order : int
        Highest LM order (the profile's ``fusion.lm_order``).
    alphas : sequence of float in [0, 1]
        OMR weights of the sweep (the profile's ``fusion.alphas``).
    max_samples : int, optional
        Decode only the first ``max_samples`` of each split (the profile's ``fusion.max_test_samples``).
    config : LateFusionConfig, optional
    cache_dir : path, optional
        Where results are cached (see the module notes); ``None``: no cache.
    jobs : int, optional
        Worker processes (default: all cores); 1 runs in this process.
    progress : bool
        Show progress bars.
    lattice_cache_dir : path, optional
        Where each modality's word graphs are stored for reuse by any run
        (:mod:`mtlnb.camera_primus.decoding.lattice_store`); share it
        between the pairs of a fold.  ``None``: lattices are not stored.

    Returns
    -------
    LateFusionResult
    """
    cfg = config or LateFusionConfig()
    jobs = jobs or os.cpu_count() or 1
    alphas = tuple(float(a) for a in alphas)
    for a in alphas:
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"run: alpha must be in [0, 1], got {a}")
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"run: max_samples must be ≥ 1 or None, got {max_samples}")
    paths = {"omr": {s: Path(omr[s]) for s in SPLITS}, "a2s": {s: Path(a2s[s]) for s in SPLITS}}
    for m in MODALITIES:
        for s in SPLITS:
            if not paths[m][s].is_file():
                raise ValueError(f"run: the {m} posteriors of split {s!r} are missing: {paths[m][s]}")
    ids = {}
    for s in SPLITS:
        if s not in references or not references[s]:
            raise ValueError(f"run: no references for split {s!r}")
        ids[s] = list(references[s])[:max_samples]
        for m in MODALITIES:
            with load_posteriors(paths[m][s]) as post:
                have = set(post)
            missing = [i for i in ids[s] if i not in have]
            if missing:
                raise ValueError(f"run: {len(missing)} {s} samples are not in {paths[m][s]} "
                                 f"(e.g. {missing[:3]}); were the posteriors exported for this fold?")
    seconds = {}
    t0 = time.perf_counter()
    vocabularies = {m: _vocabulary_of(paths[m]["test"]) for m in MODALITIES}
    for m in MODALITIES:
        if _vocabulary_of(paths[m]["val"]) != vocabularies[m]:
            raise ValueError(f"run: the {m} val and test posteriors have different vocabularies (other models?)")
    lm, lm_orders = select_lm_once(train, list(references["val"].values()), lm_order,
                                   sorted(set(vocabularies["omr"]) | set(vocabularies["a2s"])), cfg)
    seconds["lm"] = time.perf_counter() - t0
    key_base = {"lm": lm_fingerprint(lm, train), "decoder": asdict(cfg.decoder)}
    refs_all = {i: list(references[s][i]) for s in SPLITS for i in ids[s]}
    common = dict(references=refs_all, vocabularies=vocabularies, lm=lm, key_base=key_base, cfg=cfg,
                  cache_dir=Path(cache_dir) if cache_dir is not None else None, jobs=jobs, progress=progress,
                  lattice_cache_dir=Path(lattice_cache_dir) if lattice_cache_dir is not None else None)

    t0 = time.perf_counter()
    val = _decode_split("val", ids["val"], paths={m: paths[m]["val"] for m in MODALITIES}, readoffs=None,
                        alphas=alphas, **common)
    grid_val = readoff_grid(val, refs_all, "val")
    tuned = tune_readoff(grid_val, cfg.decoder.acoustic_scale)
    readoffs = tuned if cfg.readoff == "tuned" else {m: FAITHFUL for m in MODALITIES}
    seconds["val"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    test = _decode_split("test", ids["test"], paths={m: paths[m]["test"] for m in MODALITIES}, readoffs=readoffs,
                         alphas=alphas, **common)
    seconds["test"] = time.perf_counter() - t0
    seconds["per_sample"] = float(np.mean([r["seconds"]["total"] for r in test]))

    grid = pd.concat([grid_val, readoff_grid(test, refs_all, "test")], ignore_index=True)
    chosen_scale = grid.modality.map({m: r.acoustic_scale for m, r in readoffs.items()})
    chosen_penalty = grid.modality.map({m: r.insertion_penalty for m, r in readoffs.items()})
    grid["chosen"] = ((grid.decoder == "best_path") & np.isclose(grid.acoustic_scale, chosen_scale)
                      & np.isclose(grid.insertion_penalty, chosen_penalty))
    per_sample = per_sample_frame(test, refs_all, readoffs, cfg.methods)
    return LateFusionResult(lm=lm, lm_orders=lm_orders, readoff=grid, readoffs=readoffs, tuned_readoffs=tuned,
                            per_sample=per_sample, ser=ser_table(per_sample), references=refs_all, seconds=seconds,
                            paths=paths, config=cfg, alphas=alphas)


def fold_posteriors(study, fold: int, omr_name: str = "omr",
                    a2s_name: str = "a2s") -> dict[str, dict[str, Path]]:
    """Paths of a fold's val/test posteriors of both networks; they must exist (fusion trains nothing).

    Parameters
    ----------
    study : mtlnb.camera_primus.study.PrimusStudy
    fold : int
    omr_name, a2s_name : str
        Run names under ``study.model_dir(fold, name)``: ``"omr"`` (or a scenario OMR ``"omr_s<k>"``, a level run
        ``"omr_at<v>"``); ``"a2s"`` (baseline) or ``"gradspsa"``.

    Returns
    -------
    dict
        ``{"omr": {"val": path, "test": path}, "a2s": {...}}``.

    Raises
    ------
    ValueError
        A posteriors file is missing: the message names the run, the fold, and the notebook or call that makes it
        (:func:`mtlnb.camera_primus.networks.runs.ensure_run`).
    """
    out = {}
    for modality, name in (("omr", omr_name), ("a2s", a2s_name)):
        run_dir = study.model_dir(fold, name)
        paths = {s: posteriors_path(run_dir, s) for s in SPLITS}
        missing = [p.name for p in paths.values() if not p.is_file()]
        if missing:
            raise ValueError(f"fold_posteriors: {name} posteriors of fold {fold} are missing in {run_dir} "
                             f"({', '.join(missing)}); train the run first: {runs.run_maker(name)}")
        out[modality] = paths
    return out


def run_fold(study, fold: int = 0, *, omr_name: str = "omr", a2s_name: str = "a2s",
             config: LateFusionConfig | None = None, alphas: Sequence[float] | None = None,
             max_samples: int | None | str = "profile", jobs: int | None = None,
             progress: bool = True) -> LateFusionResult:
    """:func:`run` on a study's fold with the profile's LM order, α values (or ``alphas``) and sample cap (or
    ``max_samples``; None: all), and by default :meth:`LateFusionConfig.for_profile`; cached in
    ``<study root>/late_fusion/fold<k>/<omr_name>-<a2s_name>/`` (the cache key holds the sample ids and α values,
    so runs with other caps or α never mix), word graphs in the fold's :func:`fold_lattice_dir` (shared by every
    pair).  The corpus and both runs must exist (notebooks 01-03; :func:`fold_posteriors` says what is missing)."""
    P = study.profile
    config = config or LateFusionConfig.for_profile(P)
    f = study.folds[fold]
    paths = fold_posteriors(study, fold, omr_name, a2s_name)
    corpus = study.corpus
    references = {s: {i: corpus.tokens(i) for i in getattr(f, s)} for s in SPLITS}
    train = [corpus.tokens(i) for i in f.train]
    cache_dir = study.root / "late_fusion" / f"fold{fold}" / f"{omr_name}-{a2s_name}"
    return run(paths["omr"], paths["a2s"], references, train, lm_order=P.fusion.lm_order,
               alphas=P.fusion.alphas if alphas is None else tuple(alphas),
               max_samples=P.fusion.max_test_samples if max_samples == "profile" else max_samples,
               config=config, cache_dir=cache_dir, jobs=jobs, progress=progress,
               lattice_cache_dir=fold_lattice_dir(study, fold))


def fold_lattice_dir(study, fold: int) -> Path:
    """The lattice cache of a fold, shared by all its (OMR, A2S) pairs: ``<study root>/late_fusion/fold<k>/lattices``
    (pair folders are named ``<omr>-<a2s>``, so no pair can collide with it)."""
    return study.root / "late_fusion" / f"fold{fold}" / "lattices"


# ---------------------------------------------------------------------------------------------------------------
# looking at one sample


def sample_outputs(result: LateFusionResult, sample_id: str, alpha: float = 0.5) -> pd.DataFrame:
    """Every system's output for one test sample at ``alpha`` with its errors marked (see
    :func:`mtlnb.camera_primus.metrics.mark_differences`), the reference first."""
    ps = result.per_sample
    rows = ps[(ps.id == sample_id) & (ps.alpha.isna() | np.isclose(ps.alpha.fillna(-1.0), alpha))]
    if rows.empty:
        raise ValueError(f"sample_outputs: {sample_id!r} is not a decoded test sample")
    ref = result.references[sample_id]
    out = [{"system": "reference", "errors": 0, "output (errors marked)": " ".join(ref)}]
    for r in rows.itertuples():
        name = r.method if math.isnan(r.alpha) else f"{r.method} (α={r.alpha:g})"
        out.append({"system": name, "errors": int(r.errors),
                    "output (errors marked)": metrics.mark_differences(r.output.split(), ref)})
    return pd.DataFrame(out).set_index("system")


def pick_example(result: LateFusionResult) -> str:
    """A test sample worth drawing: the shortest whose OMR and A2S LM best paths differ (else the shortest)."""
    ps = result.per_sample
    bp = ps[ps.method.isin(["best_path_omr", "best_path_a2s"])].pivot(index="id", columns="method", values="output")
    lengths = ps.groupby("id").ref_len.first()
    differ = bp.index[bp.best_path_omr != bp.best_path_a2s]
    pool = lengths[differ] if len(differ) else lengths
    return str(pool.sort_values(kind="stable").index[0])
