"""Benchmark: word-graph generation and the five late-fusion methods on synthetic, peaky CTC posteriors.

Run ``python benchmarks/bench_wordgraph.py [--pairs N] [--vocab V] [--seed S] [--noise P] [--sweep] [--jobs J]``.
Prints CPU milliseconds per sample pair for each stage at the default (baseline Kaldi recipe) settings, with every
fusion method at α = 0.5, and the projected time for one test fold of the cleansed Camera-PrIMuS (4,457 pairs)
through both word graphs and all five methods; ``--sweep`` also times
:func:`mtlnb.camera_primus.fusion.methods.fuse` over α = 0, 0.1, …, 1.  ``--jobs J`` then runs the experiment layer
itself (:func:`mtlnb.camera_primus.fusion.pipeline.run`, J worker processes, no cache) on the same pairs written as
posteriors files, as its validation and test split, and projects its wall time to a whole fold (4,457 validation
pairs for the read-off tuning + 4,457 test pairs fused), at α = 0.5 and, with ``--sweep``, over the 11 α values.

The posteriors imitate a trained CRNN: a reference sequence drawn from an LM-generated corpus, each symbol a
spike of 1-3 frames between runs of blanks; a share of the spikes is uncertain (mass split between the right
symbol and one or two others, sometimes the wrong one winning), a few symbols are dropped or inserted, so that
greedy decoding has an SER of roughly 10-30 %.  The LM is :class:`mtlnb.camera_primus.decoding.ngram_lm.NGramLM`
(5-gram interpolated Witten-Bell) trained on 2,000 sequences of the same generator.

Real posteriors: ``--posteriors OMR_DIR A2S_DIR [--samples N] [--study ROOT] [--fold K] [--lm-order O]
[--frame-ratio R]`` times the same stages on the first N test samples of two trained run folders'
``posteriors_test.npz`` (e.g. ``data/primus-mini/models/fold0/omr`` and ``.../a2s``), then
:func:`mtlnb.camera_primus.fusion.pipeline.run` itself (one process, no result cache) twice on the first N validation
and test samples with a fresh lattice cache: cold (every graph decoded and stored), then warm (every graph read back).

- **LM.** A posteriors file holds only the log-posteriors, the vocabulary and the blank index (no references), so the
  LM is fitted as :func:`mtlnb.camera_primus.fusion.pipeline.run` fits it:
  :func:`mtlnb.camera_primus.fusion.pipeline.select_lm` on the fold's training transcripts (order chosen on its
  validation transcripts, at most ``--lm-order``, the profile's 5), vocabulary = both networks' symbols.  The
  transcripts are read from the study the run folders belong to: ``ROOT/folds/{train,val,test}_gt_fold<K>.dat`` and
  ``ROOT/Corpus/<id>/<id>.semantic``, with ROOT and K taken from the layout ``ROOT/models/fold<K>/<name>`` unless
  given.  The same transcripts give the SERs printed for plausibility.
- **Fusion** runs on the lattices as decoded, read off at Kaldi's (1, 1) (``pipeline.run`` first bakes a
  read-off tuned on validation into them; the cost is the same).
- **Projection to a paper fold.** Decoding time grows about linearly with frames × active hypotheses per frame;
  the mini networks emit one frame per 4 input columns (OMR) and per 4 CQT columns (A2S reads the CQT pooled by 2,
  then its blocks halve the width), the papers' one per 2: a paper sample has ``--frame-ratio`` (2) times as many
  frames.  The projection multiplies the word-graph stages by that ratio, assuming as many active hypotheses per
  frame (better-trained networks are peakier, so this errs high), and leaves fusion unscaled (it works on lattice
  arcs, which follow symbols and their alternatives rather than frames).  ms per frame is printed so that other
  assumptions can be applied by hand.  The fold has 4,457 pairs, on 2 cores (one process per core).
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

import numpy as np

from mtlnb.camera_primus.fusion import methods as fusion
from mtlnb.camera_primus.decoding.search import DecoderConfig, WordGraphDecoder, greedy_decode

FOLD_PAIRS = 4457  # test-fold size of the 5-fold split of the 22,285 cleansed ids


def _timed(timings: dict[str, float], name: str, fn):
    """``fn()``, its CPU seconds added to ``timings[name]``: CPU time of this process is robust on a machine
    shared with other jobs (wall time is reported separately)."""
    t0 = time.process_time()
    out = fn()
    timings[name] = timings.get(name, 0.0) + time.process_time() - t0
    return out


def markov_corpus(rng: np.random.Generator, vocab: list[str], n: int, length: tuple[int, int]) -> list[list[str]]:
    """Sequences from a sparse random first-order Markov chain (so that an n-gram LM has something to learn)."""
    V = len(vocab)
    succ = rng.integers(0, V, size=(V, 6))  # each symbol is followed by one of 6 likely successors
    out = []
    for _ in range(n):
        k = int(rng.integers(*length))
        s = [int(rng.integers(V))]
        for _ in range(k - 1):
            s.append(int(succ[s[-1], rng.integers(6)]) if rng.random() < 0.85 else int(rng.integers(V)))
        out.append([vocab[i] for i in s])
    return out


def peaky_posteriors(rng: np.random.Generator, seq_idx: list[int], V: int, frames: int, noise: float) -> np.ndarray:
    """(frames, V+1) log-posteriors, blank last, for the symbol indices ``seq_idx`` (see the module notes)."""
    n = len(seq_idx)
    logits = np.full((frames, V + 1), -12.0)
    logits[:, V] = 0.0
    slots = np.sort(rng.choice(np.arange(1, frames - 3), size=n, replace=False)) if n < frames - 4 else np.arange(n)
    for pos, sym in zip(slots, seq_idx):
        width = int(rng.integers(1, 3))
        for t in range(pos, min(pos + width, frames)):
            logits[t, V] = -6.0
            logits[t, sym] = 0.0
            if rng.random() < noise:  # an uncertain spike: one or two rivals, sometimes winning
                for other in rng.integers(0, V, size=int(rng.integers(1, 3))):
                    logits[t, other] = rng.normal(-0.8, 0.8)
        if rng.random() < noise / 3:  # a spurious insertion nearby
            t = min(pos + 3, frames - 1)
            logits[t, int(rng.integers(V))] = rng.normal(-0.3, 1.0)
    logits += rng.normal(0.0, 0.3, size=logits.shape)
    logits -= logits.max(axis=1, keepdims=True)
    return (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)


class AddOneBigram:
    """Fallback LM with the ``order`` / ``logprob`` interface of
    :class:`mtlnb.camera_primus.decoding.search.LanguageModel`."""

    order = 2

    def __init__(self, corpus: list[list[str]], vocab: list[str]):
        from collections import Counter

        self.pairs = Counter((a, b) for s in corpus for a, b in zip(["<s>", *s], [*s, "</s>"]))
        self.hist = Counter(a for s in corpus for a in ["<s>", *s])
        self.n = len(vocab) + 1

    def logprob(self, token: str, context) -> float:
        prev = context[-1] if context else "<s>"
        return float(np.log((self.pairs[(prev, token)] + 1) / (self.hist[prev] + self.n)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--vocab", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.25)
    parser.add_argument("--sweep", action="store_true", help="also time fusion.fuse over the 11 default alphas")
    parser.add_argument("--jobs", type=int, default=0,
                        help="also time mtlnb.camera_primus.fusion.pipeline.run with this many processes")
    parser.add_argument("--posteriors", nargs=2, metavar=("OMR_DIR", "A2S_DIR"), type=Path,
                        help="time real posteriors: two trained run folders holding posteriors_test.npz")
    parser.add_argument("--samples", type=int, default=20, help="with --posteriors: test (and val) samples timed")
    parser.add_argument("--study", type=Path, help="with --posteriors: study root (folds/, Corpus/); default from "
                                                   "the run folders' layout ROOT/models/fold<K>/<name>")
    parser.add_argument("--fold", type=int, help="with --posteriors: fold index; default from the layout")
    parser.add_argument("--lm-order", type=int, default=5, help="with --posteriors: highest LM order (profile's)")
    parser.add_argument("--frame-ratio", type=float, default=2.0,
                        help="with --posteriors: paper frames per mini frame (mini 4 columns per frame, paper 2)")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    # as mtlnb.camera_primus.fusion.pipeline runs the stages (see its _one_blas_thread)
    threadpool_limits(1, user_api="blas")
    if args.posteriors:
        bench_posteriors(args)
        return

    rng = np.random.default_rng(args.seed)
    vocab = [f"sym{i:04d}" for i in range(args.vocab)]
    index = {s: i for i, s in enumerate(vocab)}
    train = markov_corpus(rng, vocab, 2000, (20, 60))
    try:
        from mtlnb.camera_primus.decoding.ngram_lm import NGramLM

        lm = NGramLM(order=5, smoothing="witten_bell").fit(train, vocabulary=vocab)
        lm_name = "mtlnb.camera_primus.decoding.ngram_lm.NGramLM(5, witten_bell)"
    except ImportError:  # without ngram_lm: an add-one bigram (the LM only has to cost what a real one costs)
        lm = AddOneBigram(train, vocab)
        lm_name = "add-one bigram (mtlnb.camera_primus.decoding.ngram_lm unavailable)"
    test = markov_corpus(rng, vocab, args.pairs, (20, 60))
    omr_post = [peaky_posteriors(rng, [index[s] for s in seq], len(vocab), 300, args.noise) for seq in test]
    a2s_post = [peaky_posteriors(rng, [index[s] for s in seq], len(vocab), 400, args.noise * 1.5) for seq in test]

    dec = WordGraphDecoder(vocab, lm, DecoderConfig())
    # warm the LM cache the way a real run would (the first samples pay for the look-ups)
    for p in omr_post[:5] + a2s_post[:5]:
        dec.decode(p)

    timings: dict[str, float] = {}
    timed = functools.partial(_timed, timings)

    errors = {"greedy OMR": 0, "greedy A2S": 0}
    results = {name: 0 for name in fusion.METHODS}
    ref_len = 0
    arcs = {"OMR": [], "A2S": []}
    wall0 = time.perf_counter()
    for seq, po, pa in zip(test, omr_post, a2s_post):
        lo = timed("word graph OMR (300 frames)", lambda: dec.decode(po))
        la = timed("word graph A2S (400 frames)", lambda: dec.decode(pa))
        arcs["OMR"].append(lo.num_arcs)
        arcs["A2S"].append(la.num_arcs)
        out = {}
        for name in fusion.METHODS:
            out[name] = timed(f"fusion: {name}", lambda name=name: fusion.METHODS[name](lo, la, 0.5))
        if args.sweep:  # fresh lattices, so that no read-off is cached from the single-alpha runs above
            lo2, la2 = dec.decode(po), dec.decode(pa)
            timed(f"fuse(): all methods, {len(fusion.DEFAULT_ALPHAS)} alphas (extra)",
                  lambda: fusion.fuse(lo2, la2, fusion.DEFAULT_ALPHAS))
        ref_len += len(seq)
        errors["greedy OMR"] += _ed(greedy_decode(po, vocab), seq)
        errors["greedy A2S"] += _ed(greedy_decode(pa, vocab), seq)
        for name, hyp in out.items():
            results[name] += _ed(hyp, seq)

    wall = time.perf_counter() - wall0
    n = len(test)
    print(f"{n} pairs, |V| = {len(vocab)}, LM {lm_name}, "
          "default DecoderConfig (acoustic scale 2.5, beam 15, lattice beam 12)")
    print(f"lattice size: OMR {np.mean(arcs['OMR']):.0f} arcs, A2S {np.mean(arcs['A2S']):.0f} arcs (mean)")
    total = 0.0
    for name, sec in timings.items():
        ms = 1000 * sec / n
        if "(extra)" not in name:
            total += ms
        print(f"  {name:50s} {ms:8.2f} ms/pair")
    print(f"  {'total per pair, one alpha (CPU)':50s} {total:8.2f} ms   "
          f"(wall clock, all rows: {1000 * wall / n:.2f} ms)")
    print(f"projected for {FOLD_PAIRS} pairs: {total * FOLD_PAIRS / 60000:.1f} min on one core, "
          f"{total * FOLD_PAIRS / 120000:.1f} min on two (one process per core; goal: < 10 min)")
    print("SER % (synthetic, for plausibility only): "
          + ", ".join(f"{k} {100 * v / ref_len:.1f}" for k, v in {**errors, **results}.items()))
    if args.jobs:
        for alphas in [(0.5,)] + ([fusion.DEFAULT_ALPHAS] if args.sweep else []):
            _bench_experiment_layer(test, vocab, train, omr_post, a2s_post, args.jobs, alphas)


def _bench_experiment_layer(test, vocab, train, omr_post, a2s_post, jobs, alphas) -> None:
    """Wall time of :func:`mtlnb.camera_primus.fusion.pipeline.run` (val: word graphs + read-off grid; test: + fusion)
    with ``jobs`` processes."""
    import tempfile
    from pathlib import Path

    from mtlnb.core import io
    from mtlnb.camera_primus.fusion import pipeline
    from mtlnb.camera_primus.networks.ctc_tasks import POSTERIORS_FORMAT

    with tempfile.TemporaryDirectory() as tmp:
        ids = [f"s{i:05d}" for i in range(len(test))]
        paths = {}
        for name, post in (("omr", omr_post), ("a2s", a2s_post)):
            f = Path(tmp) / f"{name}.npz"
            io.write_npz(f, **dict(zip(ids, post)), __vocabulary__=np.array(vocab), __blank__=np.int64(len(vocab)),
                         __format__=np.array(POSTERIORS_FORMAT))
            paths[name] = {"val": f, "test": f}
        refs = dict(zip(ids, test))
        r = pipeline.run(paths["omr"], paths["a2s"], {"val": refs, "test": refs}, train, lm_order=5,
                            alphas=alphas, jobs=jobs, progress=False)
    n = len(test)
    per_pair = (r.seconds["val"] + r.seconds["test"]) / n
    print(f"pipeline.run, {jobs} processes, {len(alphas)} alpha(s): val {1000 * r.seconds['val'] / n:.0f} ms/pair, "
          f"test {1000 * r.seconds['test'] / n:.0f} ms/pair (wall); a whole fold (val + test, {FOLD_PAIRS} pairs "
          f"each): {per_pair * FOLD_PAIRS / 60:.1f} min  [LM selection once: {r.seconds['lm']:.0f} s]")


def _study_of(run_dir: Path, root: Path | None, fold: int | None) -> tuple[Path, int]:
    """The study root and fold index of a run folder ``ROOT/models/fold<K>/<name>`` (or those given)."""
    run_dir = run_dir.resolve()
    if fold is None:
        name = run_dir.parent.name
        if not (name.startswith("fold") and name[4:].isdigit()):
            raise ValueError(f"--posteriors: cannot tell the fold of {run_dir} (not .../fold<K>/<name>); pass --fold")
        fold = int(name[4:])
    root = root or run_dir.parents[2]
    if not ((root / "folds").is_dir() and (root / "Corpus").is_dir()):
        raise ValueError(f"--posteriors: {root} holds no folds/ and Corpus/ (the LM needs the training transcripts); "
                         "pass --study")
    return root, fold


def bench_posteriors(args) -> None:
    """Per-stage CPU time on real posteriors files, the lattice cache, and the projection (see the module notes)."""
    from mtlnb.camera_primus.fusion import pipeline
    from mtlnb.camera_primus.decoding import lattice_store
    from mtlnb.camera_primus import metrics
    from mtlnb.camera_primus.corpus import primus
    from mtlnb.camera_primus.networks.ctc_tasks import load_posteriors, posteriors_path

    omr_dir, a2s_dir = args.posteriors
    root, k = _study_of(omr_dir, args.study, args.fold)
    corpus = primus.PrimusCorpus(root)
    ids = {s: primus.read_id_list(root / "folds" / f"{s}_gt_fold{k}.dat") for s in ("train", "val", "test")}
    train = [corpus.tokens(i) for i in ids["train"]]
    refs = {s: {i: corpus.tokens(i) for i in ids[s]} for s in ("val", "test")}
    paths = {m: {s: posteriors_path(d, s) for s in ("val", "test")} for m, d in (("omr", omr_dir), ("a2s", a2s_dir))}
    post = {m: load_posteriors(paths[m]["test"]) for m in paths}
    vocab = {m: list(post[m].vocabulary.symbols) for m in post}
    lm, orders = pipeline.select_lm(train, list(refs["val"].values()), args.lm_order,
                                       sorted(set(vocab["omr"]) | set(vocab["a2s"])))
    test = [i for i in ids["test"] if all(i in post[m] for m in post)][:args.samples]
    if not test:
        raise ValueError(f"--posteriors: no test sample of fold {k} is in both posteriors files")
    cfg = DecoderConfig()
    dec = {m: WordGraphDecoder(vocab[m], lm, cfg) for m in post}
    logp = {m: [post[m][i] for i in test] for m in post}
    for m in post:  # warm the LM cache as a real run's first samples would
        for x in logp[m][:3]:
            dec[m].decode(x)

    timings: dict[str, float] = {}
    timed = functools.partial(_timed, timings)

    lat = {"omr": [], "a2s": []}
    outputs = {name: [] for name in ("greedy OMR", "greedy A2S", *fusion.METHODS)}
    wall0 = time.perf_counter()
    for j in range(len(test)):
        for m in post:
            lat[m].append(timed(f"word graph {m.upper()}", lambda: dec[m].decode(logp[m][j])))
        outputs["greedy OMR"].append(greedy_decode(logp["omr"][j], vocab["omr"]))
        outputs["greedy A2S"].append(greedy_decode(logp["a2s"][j], vocab["a2s"]))
        for name in fusion.METHODS:
            alpha = 0.5 if name in fusion.USES_ALPHA else None
            outputs[name].append(timed(f"fusion: {name}", lambda: fusion.METHODS[name](lat["omr"][j], lat["a2s"][j],
                                                                                      alpha)))
    wall = time.perf_counter() - wall0
    with tempfile.TemporaryDirectory() as tmp:  # the lattice cache's own costs: one shard per modality
        sizes = {}
        for m in post:
            f = Path(tmp) / f"{m}.npz"
            timed(f"lattice cache: store {m.upper()}", lambda: lattice_store.save_lattices(f, "bench", test, lat[m]))
            sizes[m] = f.stat().st_size
            with lattice_store.LatticeShard(f) as shard:
                back = [timed(f"lattice cache: load {m.upper()}", lambda i=i: shard[i]) for i in test]
            assert all(b.best_path() == a.best_path() for a, b in zip(lat[m], back))

    n = len(test)
    frames = {m: np.array([x.shape[0] for x in logp[m]]) for m in post}
    arcs = {m: np.array([x.num_arcs for x in lat[m]]) for m in post}
    print(f"{n} test pairs of fold {k} ({omr_dir} + {a2s_dir}), |V| = {len(vocab['omr'])} / {len(vocab['a2s'])}, "
          f"LM {lm.order}-gram {lm.effective_smoothing} on {len(train)} training transcripts "
          f"(order chosen on {len(refs['val'])} val), default DecoderConfig (acoustic scale 2.5, beam 15, lattice "
          "beam 12); CPU time of this process (the machine is shared: wall time is higher)")
    for m in post:
        print(f"  {m.upper()}: {frames[m].mean():.0f} frames (min {frames[m].min()}, max {frames[m].max()}), "
              f"lattice {arcs[m].mean():.0f} arcs (max {arcs[m].max()}), stored {sizes[m] / n / 1024:.0f} KiB")
    per = {name: 1000 * sec / n for name, sec in timings.items()}
    for name, ms in per.items():
        extra = ""
        for m in post:
            if name == f"word graph {m.upper()}":
                extra = f"   ({1000 * timings[name] / frames[m].sum():.2f} ms/frame)"
        print(f"  {name:50s} {ms:8.2f} ms/pair{extra}")
    decode = sum(per[f"word graph {m.upper()}"] for m in post)
    fuse = sum(v for name, v in per.items() if name.startswith("fusion"))
    load = sum(v for name, v in per.items() if name.startswith("lattice cache: load"))
    total = decode + fuse
    print(f"  {'total per pair, one alpha (CPU)':50s} {total:8.2f} ms   (wall clock, decode + fusion: "
          f"{1000 * wall / n:.2f} ms)")
    r = args.frame_ratio
    paper = decode * r + fuse
    print(f"projected for {FOLD_PAIRS} pairs (word graphs × {r:g} for the papers' frames, fusion as measured): "
          f"{paper:.0f} ms/pair, {paper * FOLD_PAIRS / 60000:.1f} min on one core, "
          f"{paper * FOLD_PAIRS / 120000:.1f} min on two; as measured (mini frames): "
          f"{total * FOLD_PAIRS / 120000:.1f} min on two")
    # Scenario evaluation of a fold: 9 OMRs × 2 A2S networks, each pair decoding val + test.  Without the lattice
    # cache each pair decodes both graphs (36 decodes per sample and split); with it each of the 9 OMR and 2 A2S
    # networks decodes once (11) and the other 25 graphs are loaded.
    omr_ms, a2s_ms = (per[f"word graph {m}"] * r for m in ("OMR", "A2S"))
    without = 18 * (omr_ms + a2s_ms)
    with_cache = 9 * omr_ms + 2 * a2s_ms + (36 - 11) * load / 2 * r
    print(f"scenario evaluation of a fold (9 OMRs × 2 A2S, val + test = {2 * FOLD_PAIRS} samples), word graphs only, "
          f"2 cores: {without * 2 * FOLD_PAIRS / 120000:.0f} min without the lattice cache, "
          f"{with_cache * 2 * FOLD_PAIRS / 120000:.0f} min with it (loading counted, × {r:g} too)")
    hyp_refs = [refs["test"][i] for i in test]
    print("SER % (greedy, and fusion at α = 0.5, read-off (1, 1)): " + ", ".join(
        f"{name} {100 * metrics.edit_distances(h, hyp_refs).sum() / sum(map(len, hyp_refs)):.1f}"
        for name, h in outputs.items()))
    for m in post:
        post[m].close()
    _bench_lattice_cache(paths, refs, train, args.lm_order, n)


def _bench_lattice_cache(paths, refs, train, lm_order, n) -> None:
    """Wall time of pipeline.run (1 process, no result cache) with a cold and then a warm lattice cache."""
    from mtlnb.camera_primus.fusion import pipeline

    with tempfile.TemporaryDirectory() as tmp:
        seconds = {}
        for state in ("cold", "warm"):
            r = pipeline.run(paths["omr"], paths["a2s"], refs, train, lm_order=lm_order, alphas=(0.5,),
                                max_samples=n, jobs=1, progress=False, lattice_cache_dir=Path(tmp))
            seconds[state] = r.seconds["val"] + r.seconds["test"]
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*.npz"))
    cold, warm = (1000 * seconds[s] / (2 * n) for s in ("cold", "warm"))
    print(f"pipeline.run on {n} val + {n} test pairs, 1 process, all methods at α = 0.5 (wall): lattice cache cold "
          f"{cold:.0f} ms/sample (decode + store), warm {warm:.0f} ms/sample (load): {100 * (1 - warm / cold):.0f} % "
          f"saved when both graphs are stored; cache {size / (2 * n) / 1024:.0f} KiB per sample (both graphs)")


def _ed(a, b) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


if __name__ == "__main__":
    main()
