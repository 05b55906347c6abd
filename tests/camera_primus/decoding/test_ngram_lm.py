"""Tests for mtlnb.camera_primus.decoding.ngram_lm: hand-computed models, properness, the beam-search interface, ARPA, KenLM and NLTK."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from mtlnb.camera_primus.decoding.ngram_lm import BOS, EOS, UNK, LMConfig, NGramLM, modified_kn_discounts

# The tiny corpus of the hand-computed examples: two sentences, "a b" and "a".
TINY = [["a", "b"], ["a"]]


def motif_corpus(seed: int = 1, n: int = 300, core: int = 40, tail: int = 60, motifs: int = 40) -> list[list[str]]:
    """Sentences built from a bank of repeated motifs plus rare symbols: repetitive like music, with a long tail,
    so that modified Kneser-Ney can estimate its discounts at every order 1–5 (checked in the tests)."""
    rng = np.random.default_rng(seed)
    bank = [[f"s{x:02d}" for x in rng.integers(0, core, rng.integers(2, 6))] for _ in range(motifs)]
    weights = 1.0 / np.arange(1, motifs + 1)
    weights /= weights.sum()
    sentences = []
    for _ in range(n):
        s: list[str] = []
        for m in rng.choice(motifs, size=rng.integers(0, 5), p=weights):
            s += bank[m]
            if rng.random() < 0.15:
                s.append(f"r{int(rng.integers(tail)):02d}")
        sentences.append(s)
    return sentences


@pytest.fixture(scope="module")
def corpus():
    return motif_corpus()


@pytest.fixture(scope="module")
def models(corpus):
    """Fitted models for orders 1–5 and both smoothings, with two declared symbols never seen in training."""
    vocab = sorted({t for s in corpus for t in s}) + ["never1", "never2"]
    out = {}
    for order, smoothing in itertools.product(range(1, 6), ("witten_bell", "kneser_ney")):
        out[order, smoothing] = NGramLM(order, smoothing).fit(corpus, vocabulary=vocab)
    return out


def random_contexts(lm: NGramLM, corpus, rng, n: int = 40) -> list[tuple[str, ...]]:
    """Histories from training sentences (with and without <s>), random symbol strings, and OOV symbols."""
    contexts = [(), (BOS,)]
    for _ in range(n):
        s = corpus[rng.integers(len(corpus))]
        i = int(rng.integers(0, len(s) + 1))
        contexts.append((BOS, *s[:i]))
        contexts.append(tuple(s[max(0, i - 3) : i]))
        contexts.append(tuple(str(x) for x in rng.choice(lm.vocabulary, rng.integers(1, 6))))
    contexts.append((BOS, "oov-symbol"))
    contexts.append(("a-long", "history", "of", "oov", "symbols", "x"))
    return contexts


# -- hand-computed examples --------------------------------------------------------------------------------------


def test_witten_bell_hand_example():
    # Corpus "a b", "a"; declared vocabulary {a, b, c} (c never seen); closed (no <unk>).  Events E = {a, b, c,
    # </s>}, |E| = 4.  Padded: "<s> a b </s>", "<s> a </s>".
    #
    # Unigrams (predicted positions): c(a) = 2, c(b) = 1, c(</s>) = 2, total 5, N1+ = 3 distinct, so
    #   p1(w) = (c(w) + 3 · 1/4) / (5 + 3) = (c(w) + 0.75) / 8:
    #   p1(a) = 2.75/8 = 0.34375, p1(b) = 1.75/8 = 0.21875, p1(c) = 0.75/8 = 0.09375, p1(</s>) = 0.34375  (sum 1)
    # Bigrams: c(<s> a) = 2; c(a b) = 1, c(a </s>) = 1; c(b </s>) = 1.
    #   history <s>: c = 2, N1+ = 1 → p(a|<s>) = (2 + 1·0.34375)/3 = 0.78125; p(b|<s>) = 0.21875/3 = 0.0729166…;
    #                                 p(c|<s>) = 0.09375/3 = 0.03125; p(</s>|<s>) = 0.34375/3 = 0.1145833…
    #   history a:   c = 2, N1+ = 2 → p(b|a) = (1 + 2·0.21875)/4 = 0.359375;
    #                                 p(</s>|a) = (1 + 2·0.34375)/4 = 0.421875;
    #                                 p(a|a) = 2·0.34375/4 = 0.171875; p(c|a) = 2·0.09375/4 = 0.046875
    #   history b:   c = 1, N1+ = 1 → p(</s>|b) = (1 + 0.34375)/2 = 0.671875; p(a|b) = 0.171875;
    #                                 p(b|b) = 0.109375; p(c|b) = 0.046875
    #   history c (never seen) backs off entirely: p(w|c) = p1(w).
    lm = NGramLM(2, "witten_bell", unk=False).fit(TINY, vocabulary=["a", "b", "c"])
    assert lm.vocabulary == ["a", "b", "c"] and lm.events == ["a", "b", "c", EOS]
    expected = {
        (): [0.34375, 0.21875, 0.09375, 0.34375],
        (BOS,): [0.78125, 0.21875 / 3, 0.03125, 0.34375 / 3],
        ("a",): [0.171875, 0.359375, 0.046875, 0.421875],
        ("b",): [0.171875, 0.109375, 0.046875, 0.671875],
        ("c",): [0.34375, 0.21875, 0.09375, 0.34375],
    }
    for context, probs in expected.items():
        got = [math.exp(lm.logprob(w, context)) for w in lm.events]
        np.testing.assert_allclose(got, probs, rtol=1e-12, err_msg=str(context))
    # A whole sentence: p(a b </s>) = p(a|<s>) p(b|a) p(</s>|b) = 0.78125 · 0.359375 · 0.671875
    assert math.exp(lm.sequence_logprob(["a", "b"])) == pytest.approx(0.78125 * 0.359375 * 0.671875, rel=1e-12)
    # Order 1 is the unigram level above, whatever the history.
    uni = NGramLM(1, "witten_bell", unk=False).fit(TINY, vocabulary=["a", "b", "c"])
    np.testing.assert_allclose(np.exp(uni.score_next(uni.state((BOS, "a")))), expected[()], rtol=1e-12)
    # The backoff weights are the Witten-Bell lower-order weights N1+/(c + N1+): 1/3 for <s>, 2/4 for a, 1/2 for b.
    assert lm._bow[(BOS,)] == pytest.approx(math.log10(1 / 3))
    assert lm._bow[("a",)] == pytest.approx(math.log10(2 / 4))


def test_witten_bell_hand_example_with_unk():
    # As above but open vocabulary: E = {<unk>, a, b, </s>} (no declared c).  Unigrams: (c(w) + 3/4) / 8 again, so
    # p1(<unk>) = 0.09375, and an OOV symbol scores as <unk>, in predictions and in histories.
    lm = NGramLM(2, "witten_bell").fit(TINY)
    assert lm.vocabulary == [UNK, "a", "b"]
    assert math.exp(lm.logprob("zzz")) == pytest.approx(0.09375, rel=1e-12)
    assert lm.logprob("zzz", ("a",)) == lm.logprob(UNK, ("a",))
    assert math.exp(lm.logprob("zzz", ("a",))) == pytest.approx(0.046875, rel=1e-12)
    assert lm.logprob("a", ("zzz",)) == lm.logprob("a", (UNK,)) == lm.logprob("a")  # <unk> never seen as history
    assert lm.token_index("zzz") == lm.token_index(UNK) == 0


def test_kneser_ney_hand_example():
    # Corpus "a b", "a", order 3, vocabulary {a, b} closed, E = {a, b, </s>}.  Every order's count-of-counts has a
    # zero, so Eq. 26 fails and kn_fallback="fixed" uses D1, D2, D3+ = 0.5, 1, 1.5 at every order.
    # Raw trigrams (highest order): <s> a b: 1, a b </s>: 1, <s> a </s>: 1.
    # Bigram counts: "<s> a" starts with <s> → raw count 2; the others are continuation counts N1+(• x y):
    #   a b: {<s>} → 1, b </s>: {a} → 1, a </s>: {<s>} → 1.
    # Unigram continuation counts (from the bigram types): a: {<s>} → 1, b: {a} → 1, </s>: {b, a} → 2 (raw a: 2).
    # Unigrams: total 4; γ = (0.5·2 + 1·1)/4 = 1/2; p1(a) = (1 − .5)/4 + (1/2)(1/3) = 7/24 = p1(b);
    #   p1(</s>) = (2 − 1)/4 + 1/6 = 10/24.
    # Bigrams: history <s>: a: 2, total 2, γ = 1·1/2 = 1/2 → p(a|<s>) = (2 − 1)/2 + (1/2)(7/24) = 31/48.
    #   history a: b: 1, </s>: 1, total 2, γ = 0.5·2/2 = 1/2 → p(b|a) = 0.5/2 + (1/2)(7/24) = 19/48,
    #   p(</s>|a) = 1/4 + (1/2)(10/24) = 22/48, p(a|a) = (1/2)(7/24) = 7/48.
    #   history b: </s>: 1, γ = 1/2 → p(</s>|b) = 1/2 + (1/2)(10/24) = 34/48.
    # Trigrams: history <s> a: b: 1, </s>: 1, total 2, γ = 1/2 → p(b|<s> a) = 1/4 + (1/2)(19/48) = 43/96,
    #   p(</s>|<s> a) = 1/4 + (1/2)(22/48) = 46/96, p(a|<s> a) = (1/2)(7/48) = 7/96.
    #   history a b: </s>: 1, γ = 1/2 → p(</s>|a b) = 1/2 + (1/2)(34/48) = 82/96.
    with pytest.warns(RuntimeWarning, match="cannot estimate its discounts"):
        lm = NGramLM(3, "kneser_ney", unk=False, kn_fallback="fixed").fit(TINY)
    assert lm.discounts == {1: (0.5, 1.0, 1.5), 2: (0.5, 1.0, 1.5), 3: (0.5, 1.0, 1.5)}
    expected = {
        (): [7 / 24, 7 / 24, 10 / 24],
        (BOS,): [31 / 48, 7 / 48, 10 / 48],
        ("a",): [7 / 48, 19 / 48, 22 / 48],
        ("b",): [7 / 48, 7 / 48, 34 / 48],
        (BOS, "a"): [7 / 96, 43 / 96, 46 / 96],
        ("a", "b"): [7 / 96, 7 / 96, 82 / 96],
    }
    for context, probs in expected.items():
        got = [math.exp(lm.logprob(w, context)) for w in lm.events]
        np.testing.assert_allclose(got, probs, rtol=1e-12, err_msg=str(context))


def test_modified_kn_discounts_by_hand():
    # n = (10, 5, 3, 2): Y = 10/(10 + 10) = 0.5; D1 = 1 − 2·0.5·5/10 = 0.5; D2 = 2 − 3·0.5·3/5 = 1.1;
    # D3+ = 3 − 4·0.5·2/3 = 5/3.
    np.testing.assert_allclose(modified_kn_discounts(10, 5, 3, 2), (0.5, 1.1, 5 / 3), rtol=1e-12)
    assert modified_kn_discounts(0, 5, 3, 2) is None  # no singletons
    assert modified_kn_discounts(4, 0, 3, 2) is None  # no doubletons: D2 divides by n2
    assert modified_kn_discounts(4, 2, 0, 2) is None  # D3+ divides by n3
    # n = (1, 1, 10, 0): Y = 1/3, D2 = 2 − 3·(1/3)·10 = −8 < 0: out of range.
    assert modified_kn_discounts(1, 1, 10, 0) is None
    # n4 = 0 gives D3+ = 3, the top of the allowed range (0, 3].
    assert modified_kn_discounts(10, 5, 3, 0)[2] == 3.0


# -- properness and the beam-search interface --------------------------------------------------------------------


@pytest.mark.parametrize("order", range(1, 6))
@pytest.mark.parametrize("smoothing", ["witten_bell", "kneser_ney"])
def test_distributions_sum_to_one(models, corpus, order, smoothing):
    lm = models[order, smoothing]
    if smoothing == "kneser_ney":  # precondition: this corpus lets Eq. 26 work at every order (no fallback)
        assert lm.fallback is None and sorted(lm.discounts) == list(range(1, order + 1))
    rng = np.random.default_rng(order)
    for context in random_contexts(lm, corpus, rng):
        logp = np.array([lm.logprob(w, context) for w in lm.events])
        assert np.all(np.isfinite(logp)) and np.all(logp < 0), context
        assert np.exp(logp).sum() == pytest.approx(1.0, abs=1e-12), context


@pytest.mark.parametrize("smoothing", ["witten_bell", "kneser_ney"])
def test_score_next_and_states(models, corpus, smoothing):
    lm = models[5, smoothing]
    rng = np.random.default_rng(11)
    for context in random_contexts(lm, corpus, rng):
        state = lm.state(context)
        assert len(state) <= lm.order - 1
        row = lm.score_next(state)
        assert row.shape == (len(lm.vocabulary) + 1,) and not row.flags.writeable
        # Bit for bit what logprob gives for the full history: equal states really are interchangeable.
        assert row.tolist() == [lm.logprob(w, context) for w in lm.events], context
        for w in rng.choice(lm.vocabulary, 3):
            assert lm.next_state(state, str(w)) == lm.state((*context, str(w)))
    assert lm.initial_state == lm.state((BOS,)) == (BOS,)
    assert lm.score_next(lm.initial_state)[lm.token_index(EOS)] == lm.logprob(EOS, (BOS,))
    with pytest.raises(ValueError, match="ends the sentence"):
        lm.next_state(lm.initial_state, EOS)
    with pytest.raises(ValueError, match="not a state"):
        lm.score_next(("not", "a", "seen", "history"))


def test_state_merges_histories(models):
    # With order 2 only the last symbol matters, so different long histories share a state.
    lm = models[2, "witten_bell"]
    a, b = lm.vocabulary[3], lm.vocabulary[5]
    assert lm.state((BOS, a, b)) == lm.state((b, a, a, b)) == (b,)
    # An unseen declared symbol is not a history the model distinguishes: back off to the unigram state.
    assert lm.state((BOS, "never1")) == ()


def test_sentence_start_is_a_history_boundary(models, corpus):
    lm = models[3, "witten_bell"]
    first, second = next(s for s in corpus if len(s) >= 2)[:2]
    assert lm.logprob(first, ("x", "y", BOS)) == lm.logprob(first, (BOS,))  # what came before <s> is forgotten
    assert lm.logprob(second, (BOS, first)) != lm.logprob(second, (first,))  # "<s> first" is not a mid-sentence "first"


def test_unseen_declared_symbol_gets_the_floor(models):
    # "never1" was declared but never seen: it gets only the order-0 share, the same in every context up to the
    # product of backoff weights; and it has exactly the probability of the other unseen one.
    for (order, smoothing), lm in models.items():
        for context in [(), (BOS,), (BOS, lm.vocabulary[2])]:
            assert lm.logprob("never1", context) == lm.logprob("never2", context) == lm.logprob(UNK, context)
            seen = [w for w in lm.vocabulary if w not in (UNK, "never1", "never2")]
            assert lm.logprob("never1", context) < min(lm.logprob(w, context) for w in seen)


# -- Kneser-Ney failure on small data ----------------------------------------------------------------------------


def test_kneser_ney_refuses_tiny_data_by_default():
    with pytest.raises(ValueError, match=r"order 1: count-of-counts n1\.\.n4 = 2, 1, 0, 0") as info:
        NGramLM(2, "kneser_ney").fit(TINY)
    assert "witten_bell" in str(info.value)  # the message names the way out


def test_kneser_ney_small_vocabulary_message():
    # Every symbol frequent (all continuation counts above 4): the unigram level cannot be estimated.
    seqs = [list("abcab"), list("bcabc"), list("cabca")] * 20
    with pytest.raises(ValueError, match="above 4"):
        NGramLM(3, "kneser_ney").fit(seqs)


def test_kneser_ney_witten_bell_fallback_equals_witten_bell(corpus):
    small = corpus[:12]
    wb = NGramLM(3, "witten_bell").fit(small)
    with pytest.warns(RuntimeWarning, match="Falling back to interpolated Witten-Bell"):
        kn = NGramLM(3, "kneser_ney", kn_fallback="witten_bell").fit(small)
    assert kn.effective_smoothing == "witten_bell" and kn.fallback is not None and kn.discounts == {}
    for context in [(), (BOS,), (BOS, small[0][0]), tuple(small[1][:2])]:
        assert [kn.logprob(w, context) for w in kn.events] == [wb.logprob(w, context) for w in wb.events]


def test_kneser_ney_fixed_fallback_is_proper(corpus):
    small = corpus[:12]
    with pytest.warns(RuntimeWarning):
        kn = NGramLM(4, "kneser_ney", kn_fallback="fixed", kn_fallback_discounts=(0.4, 0.9, 1.2)).fit(small)
    assert (0.4, 0.9, 1.2) in kn.discounts.values()
    rng = np.random.default_rng(5)
    for context in random_contexts(kn, small, rng, n=10):
        p = np.exp(kn.score_next(kn.state(context)))
        assert np.all((p > 0) & (p < 1)) and p.sum() == pytest.approx(1.0, abs=1e-12)


# -- ARPA ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("smoothing", ["witten_bell", "kneser_ney"])
def test_arpa_round_trip(models, corpus, smoothing, tmp_path):
    lm = models[4, smoothing]
    path = tmp_path / "lm.arpa"
    lm.to_arpa(path)
    back = NGramLM.from_arpa(path)
    assert (back.order, back.smoothing, back.vocabulary, back.config.unk) == (4, smoothing, lm.vocabulary, True)
    assert back.discounts == lm.discounts
    contexts = {(BOS, *s[:i])[-3:] for s in corpus for i in range(len(s) + 1)}  # every history in the training data
    contexts |= {("never1",), (BOS, "never2", "oov"), ("x", "y", "z")}  # and some unseen
    for context in contexts:
        assert [back.logprob(w, context) for w in lm.events] == [lm.logprob(w, context) for w in lm.events]
    # Written twice, the same bytes (sorted, deterministic).
    lm.to_arpa(tmp_path / "again.arpa")
    assert (tmp_path / "again.arpa").read_bytes() == path.read_bytes()


def test_arpa_layout(tmp_path):
    lm = NGramLM(2, "witten_bell", unk=False).fit(TINY, vocabulary=["a", "b", "c"])
    lm.to_arpa(tmp_path / "t.arpa")
    lines = (tmp_path / "t.arpa").read_text().splitlines()
    assert lines[0].startswith("# mtlnb.lm ")
    body = lines[lines.index("\\data\\") :]
    assert body[:3] == ["\\data\\", "ngram 1=5", "ngram 2=4"]
    unigrams = body[body.index("\\1-grams:") + 1 : body.index("\\2-grams:") - 1]
    assert [u.split("\t")[1] for u in unigrams] == [BOS, "a", "b", "c", EOS]
    assert unigrams[0].split("\t")[0] == "-99.0"  # <s>: never predicted
    assert float(unigrams[3].split("\t")[0]) == pytest.approx(math.log10(0.09375))  # p1(c), the hand example
    assert len(unigrams[3].split("\t")) == 2  # c is never a history: no backoff weight
    assert body[-1] == "\\end\\"


def test_from_arpa_foreign_file(tmp_path):
    # A hand-written SRILM-style bigram model without our header comment.
    text = "\n".join(
        [
            "\\data\\",
            "ngram 1=4",
            "ngram 2=2",
            "",
            "\\1-grams:",
            "-99\t<s>\t-0.30103",
            "-0.30103\ta\t-0.5",
            "-0.60206\tb",
            "-0.60206\t</s>",
            "",
            "\\2-grams:",
            "-0.1\t<s> a",
            "-0.2\ta b",
            "",
            "\\end\\",
        ]
    )
    (tmp_path / "f.arpa").write_text(text)
    lm = NGramLM.from_arpa(tmp_path / "f.arpa")
    assert (lm.order, lm.smoothing, lm.config.unk, lm.vocabulary) == (2, "unknown", False, ["a", "b"])
    assert lm.logprob("b", ("a",)) == pytest.approx(-0.2 * math.log(10))
    assert lm.logprob(EOS, ("a",)) == pytest.approx((-0.5 - 0.60206) * math.log(10))  # backoff
    with pytest.raises(ValueError, match="unknown smoothing"):
        lm.fit(TINY)
    # A pruned model (a listed bigram whose history is missing) is refused.
    (tmp_path / "p.arpa").write_text(text.replace("-0.2\ta b", "-0.2\tc b"))
    with pytest.raises(ValueError, match="history 'c' is not"):
        NGramLM.from_arpa(tmp_path / "p.arpa")
    (tmp_path / "n.arpa").write_text(text.replace("ngram 2=2", "ngram 2=3"))
    with pytest.raises(ValueError, match="declares 3 2-grams"):
        NGramLM.from_arpa(tmp_path / "n.arpa")


def test_kenlm_scores_our_arpa_identically(models, corpus, tmp_path):
    kenlm = pytest.importorskip("kenlm", reason="KenLM's Python module is not installed (pip install kenlm)")
    rng = np.random.default_rng(2)
    random_sentence = [str(x) for x in rng.choice(models[5, "kneser_ney"].vocabulary, 12)]
    sentences = corpus[:40] + [["never1", "s01", "oov"], [], random_sentence]
    for smoothing in ("witten_bell", "kneser_ney"):
        lm = models[5, smoothing]
        lm.to_arpa(tmp_path / f"{smoothing}.arpa")
        ken = kenlm.Model(str(tmp_path / f"{smoothing}.arpa"))
        for s in sentences:
            ours = [lm.logprob(w, (BOS, *s[:i])) / math.log(10) for i, w in enumerate([*s, EOS])]
            theirs = [score for score, _, _ in ken.full_scores(" ".join(s), bos=True, eos=True)]
            np.testing.assert_allclose(ours, theirs, atol=2e-6, err_msg=f"{smoothing}: {s}")  # KenLM keeps float32


def test_nltk_witten_bell_agrees_above_the_unigram_level(corpus):
    # NLTK's WittenBellInterpolated uses the same recursion, p = (c(hw) + N1+(h•) p(w|h')) / (c(h) + N1+(h•)), but
    # (1) its unigram level is the maximum-likelihood c(w)/N, where Chen & Goodman (and SRILM -interpolate, and we)
    #     interpolate the unigrams with the uniform 1/|E| as well: unseen symbols get 0 in NLTK;
    # (2) its padding (padded_everygram_pipeline) adds order−1 copies of <s> and </s> and counts them as unigram
    #     events; SRILM and we pad with one <s> (never predicted) and one </s>.
    # So we feed NLTK our own n-gram events and replace its unigram level by the Chen & Goodman formula, computed
    # here from NLTK's own counts; everything above the unigrams must then agree.
    pytest.importorskip("nltk.lm", reason="NLTK is not installed")
    from nltk.lm.models import InterpolatedLanguageModel
    from nltk.lm.smoothing import WittenBell

    train = corpus[:150]
    n_events = len({t for s in train for t in s}) + 1 + 1  # symbols, "never1", </s>

    class ChenGoodmanWittenBell(WittenBell):
        def unigram_score(self, word):
            unigrams = self.counts.unigrams
            return (unigrams[word] + len(unigrams) / n_events) / (unigrams.N() + len(unigrams))

    for order in (2, 3, 4):
        ours = NGramLM(order, "witten_bell", unk=False).fit(train, vocabulary=["never1"])
        assert len(ours.events) == n_events
        events_per_sentence = []
        for s in train:
            padded = (BOS, *s, EOS)
            events_per_sentence.append(
                [padded[i - k + 1 : i + 1] for i in range(1, len(padded)) for k in range(1, min(order, i + 1) + 1)]
            )
        theirs = InterpolatedLanguageModel(ChenGoodmanWittenBell, order)
        theirs.fit(events_per_sentence, vocabulary_text=[BOS, EOS, *ours.vocabulary])
        rng = np.random.default_rng(order)
        for context in random_contexts(ours, train, rng, n=15):
            if "oov" in " ".join(context) or "symbols" in context:
                continue  # closed vocabulary here
            for w in ours.events:
                expected = theirs.unmasked_score(w, context[-(order - 1) :] if order > 1 else None)
                assert math.exp(ours.logprob(w, context)) == pytest.approx(expected, rel=1e-10), (context, w)


# -- validation ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sequences, message",
    [
        ("a b", "expected an iterable of symbol sequences"),
        (["a b"], "sequence 0: expected a sequence of symbol strings"),
        ([["a", "b c"]], "symbol 1 is 'b c'"),
        ([["a", ""]], "symbol 1 is ''"),
        ([["a", 3]], "symbol 1 is 3"),
        ([["a", "</s>"]], "reserved '</s>'"),
        ([["<s>", "a"]], "reserved '<s>'"),
        ([], "no sequences"),
    ],
)
def test_fit_validation(sequences, message):
    with pytest.raises(ValueError, match=message):
        NGramLM(2).fit(sequences)


def test_config_and_query_validation():
    with pytest.raises(ValueError, match="order must be an integer >= 1"):
        NGramLM(0)
    with pytest.raises(ValueError, match="smoothing must be one of"):
        NGramLM(3, "good_turing")
    with pytest.raises(ValueError, match="kn_fallback must be one of"):
        NGramLM(3, "kneser_ney", kn_fallback="clamp")
    with pytest.raises(ValueError, match="0 < D_r <= r"):
        LMConfig(kn_fallback_discounts=(0.5, 2.5, 1.5))
    with pytest.raises(ValueError, match="call fit"):
        NGramLM(2).logprob("a")
    lm = NGramLM(2, unk=False).fit(TINY)
    with pytest.raises(ValueError, match="closed vocabulary"):
        lm.logprob("zzz")
    with pytest.raises(ValueError, match="closed vocabulary"):
        lm.logprob("a", ("zzz",))
    with pytest.raises(ValueError, match="never predicted"):
        lm.logprob(BOS, ())
    with pytest.raises(ValueError, match="cannot appear inside a context"):
        lm.logprob("a", ("a", EOS))
    with pytest.raises(ValueError, match="got the string"):
        lm.logprob("a", "a b")


def test_deterministic(corpus, tmp_path):
    for k in range(2):
        NGramLM(3, "kneser_ney").fit(corpus).to_arpa(tmp_path / f"{k}.arpa")
    assert (tmp_path / "0.arpa").read_bytes() == (tmp_path / "1.arpa").read_bytes()


def test_perplexity_matches_sentence_probabilities(models, corpus):
    lm = models[3, "witten_bell"]
    test = corpus[:20]
    total = sum(lm.sequence_logprob(s) for s in test)
    assert lm.perplexity(test) == pytest.approx(math.exp(-total / sum(len(s) + 1 for s in test)))
    # The training data is better predicted by the 3-gram than by the unigram model.
    assert lm.perplexity(test) < models[1, "witten_bell"].perplexity(test)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warnings on the normal path
        NGramLM(2).fit(TINY)
