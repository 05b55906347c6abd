"""Symbol n-gram language model: interpolated Witten-Bell and modified Kneser-Ney, ARPA in and out.

The word graphs of both studies weigh CTC hypotheses with an n-gram model over semantic symbols trained on the
training-fold transcripts (Alfaro-Contreras et al. 2023 and the thesis): the baseline used SRILM's interpolated
modified Kneser-Ney (``ngram-count -order 5 -kndiscount… -interpolate``), the thesis switched to interpolated
Witten-Bell because Kneser-Ney's discount estimation failed on its small scenarios.  This module implements both.

Definitions (Chen & Goodman 1998, "An empirical study of smoothing techniques for language modeling")
-----------------------------------------------------------------------------------------------------
Every sentence is padded as ``<s> w1 … wn </s>`` with a single ``<s>`` (SRILM's and KenLM's convention); ``<s>``
is a context only, never predicted.  ``h`` is a history, ``h'`` the history without its oldest symbol, ``c`` a
count, ``N1+(h•)`` the number of distinct symbols seen after ``h``.  Both smoothings are *interpolated* and
recurse down to the order-0 model, the uniform distribution over the event set ``E = vocabulary ∪ {</s>}``:

- **Witten-Bell**, interpolated (Chen & Goodman; SRILM ``-wbdiscount -interpolate``)::

      p(w|h) = (c(hw) + N1+(h•) · p(w|h')) / (c(h) + N1+(h•)),      p(w|∅') = 1/|E|

  with raw counts at every order.  ``c(h) = 0`` (unseen history) means ``p(w|h) = p(w|h')``.
- **Modified Kneser-Ney**, interpolated (Chen & Goodman; SRILM ``-kndiscount -interpolate``; KenLM ``lmplz``)::

      p(w|h) = max(c(hw) − D(c(hw)), 0) / c(h) + γ(h) · p(w|h'),
      γ(h)   = (D1·N1(h•) + D2·N2(h•) + D3+·N3+(h•)) / c(h)

  where the highest order uses raw counts and every lower order the continuation count ``N1+(• h w)`` (the
  number of distinct symbols seen before ``h w``), except n-grams that start with ``<s>``, which cannot be
  extended to the left and keep their raw count (KenLM's rule).  Three discounts per order come from
  that order's count-of-counts ``n1..n4`` (Eq. 26): ``Y = n1/(n1 + 2 n2)``, ``D1 = 1 − 2Y n2/n1``,
  ``D2 = 2 − 3Y n3/n2``, ``D3+ = 3 − 4Y n4/n3``.  Unigrams are discounted and interpolated with the uniform
  distribution too (as KenLM does; the baseline's SRILM command line did not pass ``-kndiscount1``).

Where Eq. 26 fails (a zero ``n1``, ``n2`` or ``n3``, or a discount outside ``0 < D_r ≤ r``, as happens on
small training sets) the model refuses with a ``ValueError`` naming the order, the count-of-counts and the
discounts; ``kn_fallback`` switches to a documented fallback instead (see :class:`LMConfig`).  Probabilities
are proper for any discounts in that range, so no fallback can produce a probability outside [0, 1].

Vocabulary and unseen symbols
-----------------------------
The vocabulary is the sorted union of the symbols seen in training and those declared at fit time.  A declared
symbol never seen in training gets only the order-0 share, ``Π(interpolation weights) · 1/|E|`` — small but
non-zero.  With ``unk=True`` (the default) the vocabulary also holds ``<unk>``: an ordinary event at the
lowest order, which every symbol outside the vocabulary maps to (in contexts and predictions alike); KenLM
expects one.  With ``unk=False`` the vocabulary is closed and a symbol outside it is a ``ValueError``.

Representation and speed
------------------------
A fitted model is held in ARPA backoff form: ``log10 p(w|h)`` for every seen n-gram (interpolated values) and a
backoff weight ``log10 β(h)`` for every seen history, chosen so that ``p(w|h) = β(h) · p(w|h')`` for unseen ``hw``;
for an interpolated model ``β(h)`` is exactly the weight of the lower order (Witten-Bell
``N1+(h•)/(c(h)+N1+(h•))``, Kneser-Ney ``γ(h)``).  That is what :meth:`NGramLM.to_arpa` writes (SRILM does the
same for interpolated models), :meth:`NGramLM.from_arpa` reads back bit for bit, and :meth:`NGramLM.logprob`
evaluates with a few dictionary look-ups.  For a beam search, :meth:`NGramLM.state` reduces a history to the
longest suffix the model distinguishes (equal states ⇒ equal predictions, so hypotheses can be merged) and
:meth:`NGramLM.score_next` returns all next-symbol log-probabilities of a state at once (cached).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from mtlnb.core import io as mio

BOS = "<s>"  # sentence start: a context, never predicted
EOS = "</s>"  # sentence end: predicted like a symbol, never a context
UNK = "<unk>"  # every symbol outside the vocabulary (when LMConfig.unk)
LN10 = math.log(10.0)
ARPA_NEVER = -99.0  # the log10 probability SRILM and KenLM write for <s>, which is never predicted
SMOOTHINGS = ("witten_bell", "kneser_ney")
KN_FALLBACKS = ("raise", "witten_bell", "fixed")
# a comment line before \data\ (KenLM allows '#' lines there) recording the settings
ARPA_HEADER = "# mtlnb.lm "  # a file-format marker: kept as first written, whatever the module is called now


@dataclass(frozen=True)
class LMConfig:
    """Hyper-parameters of :class:`NGramLM`."""

    order: int = 5  # n of the n-gram: the baseline's and the thesis's SRILM "-order 5" (its Kaldi recipe)
    smoothing: str = "witten_bell"  # the thesis's choice; "kneser_ney" (modified, interpolated) is the baseline's
    unk: bool = True  # an explicit <unk> event: out-of-vocabulary symbols get a defined probability (KenLM expects it)
    kn_fallback: str = "raise"  # when Eq. 26 fails: refuse; "witten_bell": the whole model becomes Witten-Bell (the
    # thesis's remedy); "fixed": the failing orders use kn_fallback_discounts (KenLM's --discount_fallback)
    kn_fallback_discounts: tuple[float, float, float] = (0.5, 1.0, 1.5)  # KenLM lmplz's fallback D1, D2, D3+
    cache_size: int = 65536  # score_next rows kept before the cache is emptied: a beam revisits few LM states

    def __post_init__(self):
        if not isinstance(self.order, (int, np.integer)) or isinstance(self.order, bool) or self.order < 1:
            raise ValueError(f"LMConfig.order must be an integer >= 1, got {self.order!r}")
        if self.smoothing not in SMOOTHINGS + ("unknown",):
            raise ValueError(f"LMConfig.smoothing must be one of {SMOOTHINGS}, got {self.smoothing!r}")
        if self.kn_fallback not in KN_FALLBACKS:
            raise ValueError(f"LMConfig.kn_fallback must be one of {KN_FALLBACKS}, got {self.kn_fallback!r}")
        d = tuple(float(x) for x in self.kn_fallback_discounts)
        if len(d) != 3 or not all(0.0 < x <= r for r, x in enumerate(d, start=1)):
            raise ValueError(
                "LMConfig.kn_fallback_discounts must be three discounts with 0 < D_r <= r, "
                f"got {self.kn_fallback_discounts!r}"
            )
        object.__setattr__(self, "kn_fallback_discounts", d)
        if self.cache_size < 1:
            raise ValueError(f"LMConfig.cache_size must be >= 1, got {self.cache_size!r}")


def modified_kn_discounts(n1: int, n2: int, n3: int, n4: int) -> tuple[float, float, float] | None:
    """Chen & Goodman's Eq. 26: the discounts ``(D1, D2, D3+)`` from count-of-counts, or ``None`` where undefined.

    Parameters
    ----------
    n1, n2, n3, n4 : int
        Number of n-grams (of one order) whose count is exactly 1, 2, 3, 4.

    Returns
    -------
    tuple of three floats, or None
        ``None`` when ``n1``, ``n2`` or ``n3`` is zero (division by zero) or a discount falls outside
        ``0 < D_r <= r`` (which would make Kneser-Ney improper or give zero probability to unseen events).
    """
    if n1 <= 0 or n2 <= 0 or n3 <= 0:
        return None
    y = n1 / (n1 + 2 * n2)
    d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    if not all(0.0 < x <= r for r, x in enumerate(d, start=1)):
        return None
    return d


class NGramLM:
    """An interpolated n-gram model over symbol sequences (see the module docstring for the definitions).

    Parameters
    ----------
    order : int
        n (1 = unigram).  Histories longer than ``order - 1`` symbols are truncated.
    smoothing : {"witten_bell", "kneser_ney"}
    **options
        The other :class:`LMConfig` fields (``unk``, ``kn_fallback``, ``kn_fallback_discounts``, ``cache_size``).

    Attributes (after :meth:`fit` or :meth:`from_arpa`)
    --------------------------------------------------
    vocabulary : list of str
        Sorted symbols the model predicts besides ``</s>`` (``<unk>`` included when ``unk``); never ``<s>``.
    events : list of str
        ``vocabulary + ["</s>"]``: the column order of :meth:`score_next`.
    effective_smoothing : str
        What was actually estimated (differs from ``smoothing`` after a ``kn_fallback="witten_bell"``).
    discounts : dict int -> (D1, D2, D3+)
        Modified Kneser-Ney discounts per order (empty for Witten-Bell).
    fallback : str or None
        The message describing a Kneser-Ney fallback that happened, else ``None``.
    """

    def __init__(self, order: int = LMConfig.order, smoothing: str = LMConfig.smoothing, **options):
        self.config = LMConfig(order=order, smoothing=smoothing, **options)
        self.vocabulary: list[str] = []
        self.events: list[str] = []
        self.effective_smoothing: str | None = None
        self.discounts: dict[int, tuple[float, float, float]] = {}
        self.fallback: str | None = None
        self._prob: dict[tuple[str, ...], float] = {}  # listed n-gram -> log10 p(w|h), interpolated
        self._bow: dict[tuple[str, ...], float] = {}  # seen history -> log10 backoff weight
        self._fitted = False

    # -- properties -------------------------------------------------------------------------------------------

    @property
    def order(self) -> int:
        return self.config.order

    @property
    def smoothing(self) -> str:
        return self.config.smoothing

    @property
    def initial_state(self) -> tuple[str, ...]:
        """The state at the start of a sentence (``state(("<s>",))``)."""
        return self.state((BOS,))

    # -- estimation -------------------------------------------------------------------------------------------

    def fit(self, sequences: Iterable[Sequence[str]], vocabulary: Iterable[str] | None = None) -> "NGramLM":
        """Estimate the model from training transcripts.

        Parameters
        ----------
        sequences : iterable of sequences of str
            One transcript per item (a list of symbols, without ``<s>``/``</s>``); an empty one counts
            ``<s> </s>``.
        vocabulary : iterable of str, optional
            Symbols the model must be able to predict even if unseen in training (e.g. the network's output
            vocabulary); they get the order-0 share.  Training symbols are always added to the vocabulary, so
            ``<unk>`` only ever stands for symbols met after training.

        Returns
        -------
        self
        """
        cfg = self.config
        if cfg.smoothing == "unknown":
            raise ValueError("NGramLM.fit: this model was read from an ARPA file of unknown smoothing; make a new one")
        seqs = _validated_sequences(sequences, "NGramLM.fit")
        vocab = set(_validated_tokens(vocabulary, "NGramLM.fit vocabulary")) if vocabulary is not None else set()
        for s in seqs:
            vocab.update(s)
        if cfg.unk:
            vocab.add(UNK)
        vocabulary_list = sorted(vocab)
        events = vocabulary_list + [EOS]

        counts = _count_ngrams([(BOS, *s, EOS) for s in seqs], cfg.order)
        smoothing, discounts, fallback = cfg.smoothing, {}, None
        if smoothing == "kneser_ney":
            counts = _kn_adjusted_counts(counts)
            failures = {}
            for k in range(1, cfg.order + 1):
                if not counts[k - 1]:
                    continue  # no n-grams of this order (every sentence shorter): nothing to discount
                coc = Counter(c for c in counts[k - 1].values() if c <= 4)
                n = tuple(coc.get(r, 0) for r in (1, 2, 3, 4))
                d = modified_kn_discounts(*n)
                if d is None:
                    failures[k] = n
                else:
                    discounts[k] = d
            if failures:
                fallback = _kn_failure_message(failures, cfg)
                if cfg.kn_fallback == "raise":
                    raise ValueError(fallback)
                warnings.warn(fallback, RuntimeWarning, stacklevel=2)
                if cfg.kn_fallback == "witten_bell":
                    smoothing, discounts = "witten_bell", {}
                    counts = _count_ngrams([(BOS, *s, EOS) for s in seqs], cfg.order)  # raw counts again
                else:
                    discounts.update({k: cfg.kn_fallback_discounts for k in failures})

        prob, bow = _interpolated_tables(counts, events, smoothing, discounts)
        self.effective_smoothing, self.discounts, self.fallback = smoothing, discounts, fallback
        self._install(vocabulary_list, prob, bow)
        return self

    def _install(self, vocabulary: list[str], prob: dict, bow: dict) -> None:
        """Set the tables and the look-up structures derived from them (shared by fit and from_arpa)."""
        self.vocabulary = list(vocabulary)
        self.events = self.vocabulary + [EOS]
        self._event_index = {w: i for i, w in enumerate(self.events)}
        self._prob, self._bow = prob, bow
        self._unigram10 = np.array([prob[(w,)] for w in self.events], dtype=np.float64)
        children = defaultdict(list)  # history -> its listed continuations (arrays built on first use)
        for ng in prob:
            if len(ng) > 1:
                children[ng[:-1]].append(ng[-1])
        self._children = dict(children)
        self._children_arrays: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
        # A history matters to the future only if it has continuations or a backoff weight (see state()).
        self._contexts = set(self._children) | set(bow)
        self._row_cache: dict[tuple[str, ...], np.ndarray] = {}
        self._fitted = True

    # -- scoring ----------------------------------------------------------------------------------------------

    def logprob(self, token: str, context: Sequence[str] = ()) -> float:
        """Natural-log probability of ``token`` after ``context``.

        Parameters
        ----------
        token : str
            A vocabulary symbol or ``"</s>"``; outside the vocabulary it counts as ``<unk>`` (``unk=True``) or
            raises ``ValueError``.
        context : sequence of str
            Preceding symbols, most recent last, of any length; only the last ``order - 1`` matter.  A leading
            ``"<s>"`` marks the sentence start; without it the history is taken as a fragment of a longer one.

        Returns
        -------
        float
            ``ln p(token | context)`` (≤ 0).
        """
        self._check_fitted()
        if token not in self._event_index:
            token = self._map_oov(token, "token")
        ctx = self._clip(context)
        prob = self._prob
        for i in range(len(ctx) + 1):  # longest listed n-gram first; every event is a listed unigram
            p = prob.get(ctx[i:] + (token,))
            if p is not None:
                break
        bow = self._bow
        for j in range(i - 1, -1, -1):  # backoff weights of the longer histories, shortest first (as score_next)
            p += bow.get(ctx[j:], 0.0)
        return p * LN10

    def sequence_logprob(self, tokens: Sequence[str], eos: bool = True) -> float:
        """``ln p(tokens [</s>] | <s>)``: the natural-log probability of a whole transcript."""
        tokens = _validated_tokens(tokens, "NGramLM.sequence_logprob")
        history = (BOS, *tokens)
        total = sum(self.logprob(t, history[: i + 1]) for i, t in enumerate(tokens))
        return total + (self.logprob(EOS, history) if eos else 0.0)

    def perplexity(self, sequences: Iterable[Sequence[str]]) -> float:
        """Per-event perplexity ``exp(−Σ ln p / Σ (len + 1))`` over transcripts (``</s>`` counted, as SRILM)."""
        seqs = _validated_sequences(sequences, "NGramLM.perplexity")
        total = sum(self.sequence_logprob(s) for s in seqs)
        return math.exp(-total / sum(len(s) + 1 for s in seqs))

    # -- beam-search interface --------------------------------------------------------------------------------

    def state(self, context: Sequence[str]) -> tuple[str, ...]:
        """Reduce a history to the longest suffix the model distinguishes.

        Two histories with the same state get identical next-symbol distributions, and the successor state
        depends only on the state and the next symbol (:meth:`next_state`), so a decoder can merge hypotheses
        that agree on it.  (A suffix that is not a seen history has neither continuations nor a backoff weight,
        so it changes nothing; because every prefix of a seen n-gram is seen, longer histories cannot matter
        either.)

        Returns
        -------
        tuple of str
            At most ``order - 1`` symbols; ``()`` when only the unigram distribution applies.
        """
        self._check_fitted()
        ctx = self._clip(context)
        contexts = self._contexts
        for i in range(len(ctx)):
            if ctx[i:] in contexts:
                return ctx[i:]
        return ()

    def next_state(self, state: tuple[str, ...], token: str) -> tuple[str, ...]:
        """The state after appending ``token`` (not ``"</s>"``, which ends the sentence) to ``state``."""
        if token == EOS:
            raise ValueError("NGramLM.next_state: '</s>' ends the sentence; there is no state after it")
        return self.state(tuple(state) + (token,))

    def token_index(self, token: str) -> int:
        """Column of ``token`` in :attr:`events` / :meth:`score_next` (``<unk>``'s for OOV when ``unk``)."""
        self._check_fitted()
        i = self._event_index.get(token)
        return i if i is not None else self._event_index[self._map_oov(token, "token")]

    def score_next(self, state: tuple[str, ...]) -> np.ndarray:
        """Natural-log probabilities of every event after ``state``.

        Parameters
        ----------
        state : tuple of str
            From :meth:`state`, :attr:`initial_state` or :meth:`next_state`.

        Returns
        -------
        ndarray float64, shape (len(vocabulary) + 1,), read-only
            ``out[i] = logprob(events[i], state)``, equal bit for bit to :meth:`logprob`; the last column is
            ``</s>``.  Rows are cached per state.
        """
        row = self._row_cache.get(state)
        if row is not None:
            return row
        self._check_fitted()
        state = tuple(state)
        if len(state) >= self.order or (state and state not in self._contexts):
            raise ValueError(f"NGramLM.score_next: {state!r} is not a state of this model; reduce it with state()")
        row10 = self._unigram10.copy()
        for j in range(len(state) - 1, -1, -1):  # histories from shortest to longest: back off, then overwrite
            h = state[j:]
            b = self._bow.get(h)
            if b:
                row10 += b
            ch = self._children_of(h)
            if ch is not None:
                row10[ch[0]] = ch[1]
        row = row10 * LN10
        row.setflags(write=False)
        if len(self._row_cache) >= self.config.cache_size:
            self._row_cache.clear()
        self._row_cache[state] = row
        return row

    # -- ARPA -------------------------------------------------------------------------------------------------

    def to_arpa(self, path: str | os.PathLike) -> None:
        """Write the model as an ARPA backoff file (log10 probabilities and backoff weights), atomically.

        A ``# mtlnb.lm {...}`` comment (:data:`ARPA_HEADER`) before ``\\data\\``
        records the settings (ARPA readers skip text there; KenLM insists that it start with ``#``).
        Numbers are written with Python's shortest round-trip repr, so :meth:`from_arpa` restores them exactly.
        """
        self._check_fitted()
        by_order: list[list[tuple[str, ...]]] = [[] for _ in range(self.order)]
        for ng in self._prob:
            by_order[len(ng) - 1].append(ng)
        rank = self._event_index
        rank_bos = {**rank, BOS: -1}  # <s> sorts first, events in vocabulary order
        for ngrams in by_order:
            ngrams.sort(key=lambda ng: tuple(rank_bos[t] for t in ng))
        meta = {
            "order": self.order,
            "smoothing": self.smoothing,
            "effective_smoothing": self.effective_smoothing,
            "unk": self.config.unk,
            "discounts": {str(k): list(v) for k, v in sorted(self.discounts.items())},
        }
        lines = [ARPA_HEADER + json.dumps(meta, sort_keys=True), "", "\\data\\"]
        sizes = [len(ngrams) for ngrams in by_order]
        sizes[0] += 1  # <s>
        lines += [f"ngram {k}={n}" for k, n in enumerate(sizes, start=1)]

        def entry(p: float, ng: tuple[str, ...]) -> str:
            b = self._bow.get(ng)
            return f"{p!r}\t{' '.join(ng)}" + (f"\t{b!r}" if b is not None else "")

        for k, ngrams in enumerate(by_order, start=1):
            lines += ["", f"\\{k}-grams:"]
            if k == 1:
                lines.append(entry(ARPA_NEVER, (BOS,)))
            lines += [entry(self._prob[ng], ng) for ng in ngrams]
        lines += ["", "\\end\\", ""]
        mio.write_text(path, "\n".join(lines))

    @classmethod
    def from_arpa(cls, path: str | os.PathLike, **options) -> "NGramLM":
        """Read an ARPA backoff model (ours, SRILM's or KenLM's, unpruned) into an :class:`NGramLM`.

        The settings come from the :data:`ARPA_HEADER` comment where present (``options`` override them); other
        files get ``smoothing="unknown"``, ``unk`` = whether ``<unk>`` is listed.  Our own files give back
        identical log-probabilities.  Pruned models, where a listed n-gram's history is missing, are refused
        (:meth:`state` relies on every prefix of a listed n-gram being listed).
        """
        meta, sizes, prob, bow = _read_arpa(path)
        order = max(sizes)
        unigrams = [ng[0] for ng in prob if len(ng) == 1]
        if EOS not in unigrams:
            raise ValueError(f"{path}: the ARPA file lists no '</s>' unigram")
        unk = UNK in unigrams
        settings = {"order": order, "smoothing": "unknown", "unk": unk}
        if meta is not None:
            settings.update({k: meta[k] for k in ("smoothing", "unk") if k in meta})
        settings.update(options)
        if settings["order"] != order:
            raise ValueError(f"{path}: the file is an order-{order} model, not order {settings['order']}")
        if bool(settings["unk"]) != unk:
            raise ValueError(f"{path}: unk={settings['unk']} but '<unk>' is {'' if unk else 'not '}listed")
        lm = cls(**settings)
        if meta is not None:
            lm.effective_smoothing = meta.get("effective_smoothing")
            lm.discounts = {int(k): tuple(v) for k, v in meta.get("discounts", {}).items()}
        prob.pop((BOS,), None)  # <s> is a history only; its -99 is a placeholder
        for ng in prob:
            if len(ng) > 1 and ng[:-1] not in prob and ng[:-1] != (BOS,):
                raise ValueError(
                    f"{path}: n-gram {' '.join(ng)!r} is listed but its history {' '.join(ng[:-1])!r} is not "
                    "(a pruned model); pruned models are not supported"
                )
        vocabulary = [w for w in unigrams if w not in (BOS, EOS)]
        lm._install(vocabulary, prob, bow)
        return lm

    # -- helpers ----------------------------------------------------------------------------------------------

    def _children_of(self, h: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
        """(event indices, log10 probabilities) of the n-grams listed after history ``h``, or None."""
        arrays = self._children_arrays.get(h)
        if arrays is None:
            words = self._children.get(h)
            if words is None:
                return None
            arrays = (
                np.array([self._event_index[w] for w in words], dtype=np.int64),
                np.array([self._prob[h + (w,)] for w in words], dtype=np.float64),
            )
            self._children_arrays[h] = arrays
        return arrays

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise ValueError("NGramLM: the model is empty; call fit() or from_arpa() first")

    def _map_oov(self, token: str, what: str) -> str:
        if token == BOS:
            raise ValueError(f"NGramLM: '<s>' is never predicted and may only start a context (got it as {what})")
        if token == EOS and what == "context symbol":
            raise ValueError("NGramLM: '</s>' cannot appear inside a context")
        if not isinstance(token, str):
            raise ValueError(f"NGramLM: {what} {token!r} is a {type(token).__name__}, expected str")
        if self.config.unk:
            return UNK
        raise ValueError(f"NGramLM: {what} {token!r} is not in the closed vocabulary (unk=False)")

    def _clip(self, context: Sequence[str]) -> tuple[str, ...]:
        """The last ``order - 1`` symbols of ``context``, from its last ``<s>`` on, OOV mapped to ``<unk>``."""
        if isinstance(context, str):
            raise ValueError(f"NGramLM: context must be a sequence of symbols, got the string {context!r}")
        n = self.order - 1
        if n == 0:
            return ()
        ctx = tuple(context[-n:])
        if BOS in ctx:  # an earlier sentence (or padding) before the last <s> cannot matter
            ctx = ctx[len(ctx) - 1 - ctx[::-1].index(BOS) :]
        start = 1 if ctx and ctx[0] == BOS else 0
        index = self._event_index
        for t in ctx[start:]:
            if t not in index or t == EOS:  # rare: rebuild with OOV symbols mapped (or refused)
                return ctx[:start] + tuple(
                    t if t in index and t != EOS else self._map_oov(t, "context symbol") for t in ctx[start:]
                )
        return ctx

    def __repr__(self) -> str:
        state = f"{len(self.vocabulary)} symbols, {len(self._prob)} n-grams" if self._fitted else "empty"
        return f"NGramLM(order={self.order}, smoothing={self.smoothing!r}; {state})"


# -- estimation internals ---------------------------------------------------------------------------------------


def _count_ngrams(padded: list[tuple[str, ...]], order: int) -> list[Counter]:
    """``counts[k-1][ng]``: how often the k-gram ``ng`` occurs as a predicted event (``<s>`` is never predicted).

    ``padded`` sentences are ``(<s>, w1, …, wn, </s>)``; a k-gram is every window of k symbols, so those near the
    start are shorter than ``order`` (a single ``<s>``, as SRILM and KenLM).
    """
    counts = []
    for k in range(1, order + 1):
        c = Counter(ng for s in padded for ng in zip(*(s[j:] for j in range(k))))
        if k == 1:
            c.pop((BOS,), None)
        counts.append(c)
    return counts


def _kn_adjusted_counts(counts: list[Counter]) -> list[Counter]:
    """Kneser-Ney counts: raw at the highest order and for n-grams starting with ``<s>``; elsewhere the number
    of distinct symbols seen before the n-gram, ``N1+(• ng)``."""
    adjusted = []
    for k in range(1, len(counts)):
        a = Counter(ng[1:] for ng in counts[k])  # each distinct (k+1)-gram extends its suffix by one left symbol
        for ng, c in counts[k - 1].items():
            if ng[0] == BOS:
                a[ng] = c
        adjusted.append(a)
    adjusted.append(Counter(counts[-1]))
    return adjusted


def _interpolated_tables(
    counts: list[Counter], events: list[str], smoothing: str, discounts: dict
) -> tuple[dict, dict]:
    """Log10 interpolated probabilities of every seen n-gram (all events at order 1) and log10 backoff weights.

    Both smoothings share one form, ``p(w|h) = (a(hw) + W(h) · p(w|h')) / Z(h)``, with the backoff weight
    ``W(h)/Z(h)``:

    - Witten-Bell: ``a = c``, ``W(h) = N1+(h•)``, ``Z(h) = c(h) + N1+(h•)``;
    - modified Kneser-Ney: ``a = c − D(c)``, ``W(h) = Σ_w D(c(hw))``, ``Z(h) = c(h)``.

    ``p(w|h')`` is always listed one order down, because every suffix of a seen n-gram is seen.
    """
    lower: dict[tuple[str, ...], float] = {}  # linear p(w|h') of the order below
    prob10: dict[tuple[str, ...], float] = {}
    bow10: dict[tuple[str, ...], float] = {}
    uniform = 1.0 / len(events)
    log10 = math.log10
    for k, cnt in enumerate(counts, start=1):
        if k == 1:  # every event is listed; the unseen ones get the order-0 share only
            cnt = {**{(w,): 0 for w in events}, **cnt}
        if smoothing == "witten_bell":
            terms = {c: (c, c + 1, 1) if c else (0, 0, 0) for c in set(cnt.values())}  # count -> (a, Z part, W part)
        else:
            d = (0.0, *discounts[k])  # D(0) = 0; 0 < D_r <= r keeps a = c - D(c) >= 0
            terms = {c: (c - d[min(c, 3)], c, d[min(c, 3)]) for c in set(cnt.values())}
        z: dict[tuple[str, ...], float] = {}
        w: dict[tuple[str, ...], float] = {}
        for ng, c in cnt.items():
            h = ng[:-1]
            _, zc, wc = terms[c]
            z[h] = z.get(h, 0.0) + zc
            w[h] = w.get(h, 0.0) + wc
        current: dict[tuple[str, ...], float] = {}
        for ng, c in cnt.items():
            h = ng[:-1]
            back = uniform if k == 1 else lower[ng[1:]]
            current[ng] = (terms[c][0] + w[h] * back) / z[h]
        prob10.update((ng, log10(p)) for ng, p in current.items())
        if k > 1:
            bow10.update((h, log10(w[h] / z[h])) for h in z)
        lower = current
    return prob10, bow10


def _kn_failure_message(failures: dict[int, tuple[int, int, int, int]], cfg: LMConfig) -> str:
    parts = []
    for k, n in sorted(failures.items()):
        n1, n2, n3, n4 = n
        if min(n1, n2, n3) > 0:
            y = n1 / (n1 + 2 * n2)
            d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
            detail = "D1, D2, D3+ = " + ", ".join(f"{x:.4g}" for x in d) + " (need 0 < D_r <= r)"
        elif n1 == n2 == n3 == n4 == 0:
            what = "count" if k == cfg.order else "continuation count"
            detail = f"every {k}-gram has a {what} above 4 (typical of a small symbol vocabulary): Eq. 26 is undefined"
        else:
            detail = "a zero among n1, n2, n3 leaves Eq. 26 undefined"
        parts.append(f"order {k}: count-of-counts n1..n4 = {n1}, {n2}, {n3}, {n4}; {detail}")
    action = {
        "raise": "Use smoothing='witten_bell' (the thesis's choice), a lower order, more data, or "
        "kn_fallback='witten_bell' / 'fixed'.",
        "witten_bell": "Falling back to interpolated Witten-Bell for the whole model (kn_fallback='witten_bell').",
        "fixed": f"Using the fixed discounts {cfg.kn_fallback_discounts} for these orders (kn_fallback='fixed').",
    }[cfg.kn_fallback]
    return (
        "Modified Kneser-Ney cannot estimate its discounts (Chen & Goodman Eq. 26) on this training data — "
        + "; ".join(parts)
        + ". This happens on small training sets, such as the thesis's small scenarios. "
        + action
    )


def _read_arpa(path: str | os.PathLike) -> tuple[dict | None, dict, dict, dict]:
    """Parse an ARPA file: (settings from our header comment or None, {order: declared size}, log10 probs, bows)."""
    meta = None
    sizes: dict[int, int] = {}
    prob: dict[tuple[str, ...], float] = {}
    bow: dict[tuple[str, ...], float] = {}
    section = None  # None before \data\, 0 inside it, k inside \k-grams:
    seen = Counter()
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            where = f"{path}:{lineno}"
            if section is None:
                if line.startswith(ARPA_HEADER.strip()):
                    meta = json.loads(line[len(ARPA_HEADER.strip()) :])
                elif line == "\\data\\":
                    section = 0
                continue
            if not line:
                continue
            if line == "\\end\\":
                break
            if line.startswith("\\") and line.endswith("-grams:"):
                try:
                    section = int(line[1:-7])
                except ValueError:
                    raise ValueError(f"{where}: bad section header {line!r}") from None
                if section not in sizes:
                    raise ValueError(f"{where}: section {line!r} not declared in \\data\\")
                continue
            if section == 0:
                if not line.startswith("ngram ") or "=" not in line:
                    raise ValueError(f"{where}: expected 'ngram k=count' in \\data\\, got {line!r}")
                k, n = line[6:].split("=")
                sizes[int(k)] = int(n)
                continue
            fields = line.split()
            if len(fields) not in (section + 1, section + 2):
                expected = f"{section + 1} or {section + 2} fields"
                raise ValueError(f"{where}: a {section}-gram entry needs {expected}: {line!r}")
            try:
                p = float(fields[0])
                b = float(fields[-1]) if len(fields) == section + 2 else None
            except ValueError:
                raise ValueError(f"{where}: non-numeric probability or backoff in {line!r}") from None
            ng = tuple(fields[1 : section + 1])
            if BOS in ng[1:] or EOS in ng[:-1]:
                raise ValueError(f"{where}: '<s>' may only start and '</s>' only end an n-gram: {line!r}")
            if p > 0:
                raise ValueError(f"{where}: positive log10 probability {p} in {line!r}")
            prob[ng] = p
            if b is not None:
                bow[ng] = b
            seen[section] += 1
    if not sizes:
        raise ValueError(f"{path}: no \\data\\ section; not an ARPA file")
    for k, n in sizes.items():
        if seen[k] != n:
            raise ValueError(f"{path}: \\data\\ declares {n} {k}-grams but the file lists {seen[k]}")
    return meta, sizes, prob, bow


def _validated_tokens(tokens, where: str) -> list[str]:
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Iterable):
        raise ValueError(f"{where}: expected a sequence of symbol strings, got {type(tokens).__name__} {tokens!r:.60}")
    out = list(tokens)
    for j, t in enumerate(out):
        if not isinstance(t, str) or t.split() != [t]:
            raise ValueError(f"{where}: symbol {j} is {t!r}; symbols are non-empty strings without whitespace")
        if t in (BOS, EOS):
            raise ValueError(f"{where}: symbol {j} is the reserved {t!r}; sentence boundaries are added by the model")
    return out


def _validated_sequences(sequences, where: str) -> list[list[str]]:
    if isinstance(sequences, (str, bytes)) or not isinstance(sequences, Iterable):
        raise ValueError(f"{where}: expected an iterable of symbol sequences, got {type(sequences).__name__}")
    seqs = []
    for i, s in enumerate(sequences):
        seqs.append(_validated_tokens(s, f"{where}: sequence {i}"))
    if not seqs:
        raise ValueError(f"{where}: no sequences")
    return seqs


__all__ = ["BOS", "EOS", "UNK", "LMConfig", "NGramLM", "modified_kn_discounts"]
