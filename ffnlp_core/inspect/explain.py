"""Why did the network say that? Word effects measured through the whole network, never read off layer_0.

- `explain(p, text)`: the prediction for one comment and each word's occlusion effect: the change in the
  class probabilities when every occurrence of the word is removed (with word pairs, the pairs it is in go
  too). Words the vectorizer does not know change nothing: "ignored". Its cost grows linearly with the
  comment's length (see `occlusion_probs`); comments over MAX_EXPLAIN_CHARS are refused.
- `solo_effects(p)`: for every vocabulary word, P(class | a comment of only that word) - P(class | empty).
- `average_effect` / `company_effects`: a word's mean occlusion effect over real comments, and how it
  depends on the company it keeps ("jerk" alone is an insult, beside "chicken" it is a dish).
- `render_html`: the comment with its words colored by effect; every piece of user text is html-escaped.

All of it runs on a frozen CPU copy of the model (`predictor`), so a run that is still training can be
explained without racing the worker's in-place weight updates, and dropout is off.
"""

from __future__ import annotations

import copy
import html
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import torch

from ..data.features import BagOfWords
from ..nn.inputs import to_torch_csr
from ..nn.model import FeedForwardClassifier

MAX_EXPLAIN_CHARS = 5000  # a long comment (one, not a document); explaining it takes milliseconds
_PLACEHOLDER = "ffnlpremovedword"  # stands where a removed word was: unknown, so it breaks word pairs


@dataclass(frozen=True)
class Predictor:
    """A frozen CPU copy of a trained model, its vectorizer and its class names."""

    model: FeedForwardClassifier
    vectorizer: BagOfWords
    classes: list[str]

    @property
    def vocabulary(self) -> dict[str, int]:
        return self.vectorizer.index_


def predictor(model: FeedForwardClassifier, vectorizer: BagOfWords, classes: list[str]) -> Predictor:
    """Copy the model to the CPU in eval mode (the original keeps training undisturbed)."""
    frozen = copy.deepcopy(model).cpu().eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    return Predictor(frozen, vectorizer, list(classes))


@torch.no_grad()
def weights_fingerprint(model: FeedForwardClassifier) -> float:
    """A number that changes whenever the weights do (the output layer's sum): cheap enough to poll, so a
    page can tell when a training run's model was refreshed."""
    out = model.output_layer
    return float(out.weight.double().sum() + out.bias.double().sum())


@torch.no_grad()
def predict_rows(p: Predictor, x: sp.csr_matrix, chunk: int = 8192) -> np.ndarray:
    """Class probabilities (rows, C) for bag-of-words rows."""
    out = []
    for s in range(0, x.shape[0], chunk):
        logits, _ = p.model(to_torch_csr(x[s : s + chunk]))
        out.append(torch.softmax(logits, dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(p.classes)), np.float32)


def predict_proba(p: Predictor, texts: list[str]) -> np.ndarray:
    """Class probabilities (len(texts), C) for raw comments."""
    return predict_rows(p, p.vectorizer.transform(texts))


# --- one comment -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    """A stretch of the comment: a word (word set) or the text between words (word None)."""

    text: str  # as written
    word: str | None  # the vectorizer's token (lowercased)
    ignored: bool = False  # removing it changes nothing the network sees (outside the vocabulary)


@dataclass
class Explanation:
    text: str
    classes: list[str]
    probs: np.ndarray  # (C,) P(class | comment)
    pieces: list[Piece]
    words: list[str]  # distinct tokens, in order of first appearance
    effects: np.ndarray  # (len(words), C): P(class | comment) - P(class | comment without the word)
    ignored: set[str]

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probs))

    @cached_property
    def _row(self) -> dict[str, int]:  # word -> its row of effects (a list's index() per word is quadratic)
        return {w: i for i, w in enumerate(self.words)}

    def effect(self, word: str, target: int) -> float:
        return float(self.effects[self._row[word], target])

    def table(self, target: int) -> list[dict]:
        """One row per distinct word, strongest effect on P(target) first."""
        counts = Counter(pc.word for pc in self.pieces if pc.word is not None)
        rows = [
            {
                "word": w,
                "effect": float(self.effects[i, target]),
                "count": counts[w],
                "in vocabulary": w not in self.ignored,
            }
            for i, w in enumerate(self.words)
        ]
        return sorted(rows, key=lambda r: -abs(r["effect"]))


def _placeholder(vocabulary: dict[str, int]) -> str:
    """A token no vocabulary entry (word or pair) contains."""
    used = {t for feature in vocabulary for t in feature.split(" ")}
    token, i = _PLACEHOLDER, 0
    while token in used:
        i += 1
        token = f"{_PLACEHOLDER}{i}"
    return token


def split_pieces(vectorizer: BagOfWords, text: str) -> tuple[list[Piece], list[str]]:
    """The comment as the vectorizer reads it (HTML entities decoded) cut into words (as the vectorizer
    tokenizes it) and the text between them."""
    text = vectorizer.clean(text)
    tokens = vectorizer.tokenize(text, cleaned=True)
    pattern = re.compile(vectorizer.vectorizer_.token_pattern)
    matches = list(pattern.finditer(text))
    if [m.group().lower() for m in matches] != tokens:  # unusual casing rules: show the tokens alone
        pieces = []
        for i, t in enumerate(tokens):
            pieces += [Piece(" ", None)] * (i > 0) + [Piece(t, t)]
        return pieces, tokens
    pieces, at = [], 0
    for m, t in zip(matches, tokens, strict=True):
        if m.start() > at:
            pieces.append(Piece(text[at : m.start()], None))
        pieces.append(Piece(m.group(), t))
        at = m.end()
    if at < len(text):
        pieces.append(Piece(text[at:], None))
    return pieces, tokens


def occlusion_texts(vectorizer: BagOfWords, tokens: list[str], words: list[str]) -> list[str]:
    """The comment as the vectorizer reads it, then once per word with that word's every occurrence
    replaced by an unknown token (so its pairs vanish too and no new pair forms across the gap)."""
    hole = _placeholder(vectorizer.index_)
    return [" ".join(tokens)] + [" ".join(hole if t == w else t for t in tokens) for w in words]


def occlusion_probs(p: Predictor, x0: sp.csr_matrix, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """P(class | the comment without the word) for each word, (words, C), and whether the network sees the
    word at all (words,): the same numbers as vectorizing every `occlusion_texts` row, in time and memory
    linear in the comment's length instead of words x length.

    Every occurrence of a feature (word or pair) holds the same words, so removing a word zeroes exactly the
    features of x0 that hold it and leaves the others as they are. The first layer is linear, so
    z_w = s_w (x0 W - (x0 on those features) W) + b, where s_w renormalizes a tf-idf row to unit length
    (1 for counts and binary); the layers after it run as in the model's forward."""
    vocabulary, row_of = p.vectorizer.vocabulary_, {w: i for i, w in enumerate(words)}
    rows, cols, vals = [], [], []
    for f, v in zip(x0.indices, x0.data, strict=True):  # the comment's features: a sparse (vocab,) row
        for w in set(vocabulary[f].split(" ")):
            if w in row_of:
                rows.append(row_of[w])
                cols.append(f)
                vals.append(v)
    n = len(words)
    removed = sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(n, x0.shape[1]))
    held = np.bincount(rows, minlength=n)  # features each word is in; 0: the network does not see it
    scale = np.ones(n)
    if p.vectorizer.kind == "tfidf":  # a shorter row is normalized again: 1 / ||x0 without the features||
        squares = np.asarray(vals, np.float64) ** 2
        left = float((x0.data.astype(np.float64) ** 2).sum()) - np.bincount(rows, squares, minlength=n)
        left[held == x0.nnz] = 0.0  # nothing left: sklearn leaves an empty row empty
        scale = np.divide(1.0, np.sqrt(left), out=np.zeros(n), where=left > 0)
    first = p.model.linear_layers()[0]
    probs = []
    with torch.no_grad():
        full = first(to_torch_csr(x0)) - first.bias  # (1, width): x0 W
        for s in range(0, n, 4096):
            part = first(to_torch_csr(removed[s : s + 4096])) - first.bias  # (chunk, width)
            s_w = torch.from_numpy(scale[s : s + 4096, None].astype(np.float32))
            probs.append(torch.softmax(_after_first_layer(p.model, s_w * (full - part) + first.bias), 1))
    out = torch.cat(probs).numpy() if probs else np.zeros((0, len(p.classes)), np.float32)
    return out, held > 0


def _after_first_layer(model: FeedForwardClassifier, z: torch.Tensor) -> torch.Tensor:
    """Class scores (B, C) from the first layer's output z (B, width), as `FeedForwardClassifier.forward`
    goes on (eval mode: dropout is the identity)."""
    h = z
    for layer in model.linear_layers()[1:]:
        h = layer(model.dropout(model.activation(h)))
    return h


def explain(p: Predictor, text: str) -> Explanation:
    """The prediction for `text` and each distinct word's occlusion effect on every class probability.
    A comment over MAX_EXPLAIN_CHARS is refused with a ValueError the page shows."""
    if len(text) > MAX_EXPLAIN_CHARS:
        raise ValueError(
            f"the comment has {len(text):,} characters; Try it explains at most {MAX_EXPLAIN_CHARS:,} "
            "(one comment, not a document): shorten it"
        )
    pieces, tokens = split_pieces(p.vectorizer, text)
    words = list(dict.fromkeys(tokens))
    x0 = p.vectorizer.transform([" ".join(tokens)])  # (1, vocab): the comment as the network reads it
    probs = predict_rows(p, x0)[0]
    without, seen = occlusion_probs(p, x0, words)
    ignored = {w for w, s in zip(words, seen, strict=True) if not s}
    pieces = [Piece(pc.text, pc.word, pc.word in ignored) for pc in pieces]
    effects = probs[None, :] - without  # (words, C)
    effects[~seen] = 0.0  # the same input: exactly no effect
    return Explanation(text, p.classes, probs, pieces, words, effects, ignored)


# --- rendering -------------------------------------------------------------------------------------
def effect_color(effect: float, scale: float) -> str:
    """Green for words that raise the probability, red for words that lower it; alpha by strength."""
    a = 0.0 if scale <= 0 else min(1.0, abs(effect) / scale)
    rgb = "22,163,74" if effect > 0 else "220,38,38"
    return f"rgba({rgb},{0.12 + 0.6 * a:.2f})" if a > 0.01 else "transparent"


def render_html(e: Explanation, target: int) -> str:
    """The comment as HTML, words colored by their effect on P(target). Every piece of user text goes
    through html.escape, so a comment holding markup shows as the literal characters typed."""
    scale = float(np.abs(e.effects[:, target]).max()) if len(e.words) else 0.0
    out = []
    for pc in e.pieces:
        shown = html.escape(pc.text)
        if pc.word is None:
            out.append(shown)
        elif pc.ignored:
            out.append(
                '<span class="ffnlp-ignored" title="not in the vocabulary: ignored" style="color:#9ca3af;'
                f'text-decoration:line-through dotted">{shown}</span>'
            )
        else:
            eff = e.effect(pc.word, target)
            out.append(
                f'<span class="ffnlp-word" title="{eff:+.3f}" style="background:{effect_color(eff, scale)};'
                f'border-radius:4px;padding:1px 3px">{shown}</span>'
            )
    return (
        '<div class="ffnlp-explained" style="font-size:1.25rem;line-height:2.1;white-space:pre-wrap">'
        + "".join(out)
        + "</div>"
    )


# --- the vocabulary --------------------------------------------------------------------------------
def solo_effects(p: Predictor) -> tuple[list[str], np.ndarray]:
    """Single words of the vocabulary and P(class | only that word) - P(class | empty comment), (n, C)."""
    words = [w for w in p.vectorizer.vocabulary_ if " " not in w]
    probs = predict_proba(p, ["", *words])
    return words, probs[1:] - probs[:1]


def top_words(words: list[str], effects: np.ndarray, target: int, k: int = 10) -> list[tuple[str, float]]:
    """The k words that raise P(target) the most."""
    order = np.argsort(-effects[:, target], kind="stable")[:k]
    return [(words[i], float(effects[i, target])) for i in order]


def average_effect(p: Predictor, word: str, texts: list[str], max_texts: int = 300) -> tuple[np.ndarray, int]:
    """Mean occlusion effect (C,) of `word` over the comments (up to max_texts) that contain it, and
    how many there were. NaN when none does."""
    hits = [t for t in texts if word in p.vectorizer.tokenize(t)][:max_texts]
    if not hits:
        return np.full(len(p.classes), np.nan), 0
    pairs = [occlusion_texts(p.vectorizer, p.vectorizer.tokenize(t), [word]) for t in hits]
    probs = predict_proba(p, [s for pair in pairs for s in pair]).reshape(len(hits), 2, -1)
    return (probs[:, 0] - probs[:, 1]).mean(axis=0), len(hits)


def company_effects(p: Predictor, word: str, partner: str, texts: list[str]) -> dict:
    """How `word`'s effect depends on `partner`: probabilities of the four minimal comments ("", word,
    partner, "word partner") and the word's mean occlusion effect in real comments without / with partner."""
    minimal = ["", word, partner, f"{word} {partner}"]
    probs = predict_proba(p, minimal)
    without = [t for t in texts if partner not in p.vectorizer.tokenize(t)]
    with_partner = [t for t in texts if partner in p.vectorizer.tokenize(t)]
    alone, n_alone = average_effect(p, word, without)
    together, n_together = average_effect(p, word, with_partner)
    return {
        "comments": minimal,
        "probs": probs,  # (4, C)
        "effect_alone": probs[1] - probs[0],  # adding word to an empty comment
        "effect_with_partner": probs[3] - probs[2],  # adding word to a comment holding partner
        "dev_alone": alone,
        "n_alone": n_alone,
        "dev_with_partner": together,
        "n_with_partner": n_together,
    }


def dev_comments(run, ds=None, n: int = 300) -> list[tuple[str, str]]:
    """(comment, gold class) of up to n dev comments to try, cut to MAX_EXPLAIN_CHARS: the run's own (a
    live run's data set, or the comments a stored run kept), else those of the data set `ds`."""
    labels = run.dev_labels()
    if labels is not None and (labels >= 0).any():
        rows = np.flatnonzero(labels >= 0)[:n]
        found = [(run.dev_text(int(i)), run.class_names[int(labels[i])]) for i in rows]
    elif ds is not None:
        found = [(ds.dev_text(i), ds.class_names[int(ds.y_dev[i])]) for i in range(min(n, len(ds.y_dev)))]
    else:
        found = []
    return [(text[:MAX_EXPLAIN_CHARS], gold) for text, gold in found]
