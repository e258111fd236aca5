"""Bag-of-words features with scikit-learn conventions: `fit` learns the vocabulary, `transform` is pure.

Output is a scipy CSR matrix of float32 (rows x vocabulary) and stays sparse all the way to the model:
a dense matrix of the whole data set (24k rows x 10k words = 1 GB in float32) is never built.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ..config import VECTORIZERS, DataConfig, declared
from .errors import DataError

TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # scikit-learn's default: words of two or more letters or digits
_BOUNDS = declared(DataConfig)  # a saved state is held to the bounds the settings declare
MAX_VOCABULARY = int(_BOUNDS["max_features"]["max"])  # the largest vocabulary the settings allow


class BagOfWords:
    """Turns comments into word-count vectors (counts, binary or tf-idf; words or words and pairs)."""

    def __init__(
        self,
        kind: str = "counts",
        ngram_max: int = 1,
        min_df: int = 1,
        max_features: int | None = None,
        decode_entities: bool = True,
    ):
        self.kind = kind
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_features = max_features
        self.decode_entities = decode_entities

    def clean(self, text: str) -> str:
        """The comment as the vectorizer reads it: HTML entities decoded ("&amp;" -> "&", "&#128514;" -> the
        emoji), so that scraped text does not turn entity numbers into words."""
        return html.unescape(text) if self.decode_entities else text

    def _make(self):
        from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer  # ~1 s to import

        if self.kind not in VECTORIZERS:
            raise ValueError(f"unknown vectorizer {self.kind!r}; use one of {list(VECTORIZERS)}")
        common = dict(
            ngram_range=(1, self.ngram_max),
            min_df=self.min_df,
            max_features=self.max_features,
            token_pattern=TOKEN_PATTERN,
            dtype=np.float32,
        )
        if self.kind == "tfidf":
            return TfidfVectorizer(**common)
        return CountVectorizer(binary=self.kind == "binary", **common)

    def fit(self, texts: Sequence[str]) -> BagOfWords:
        """Learn the vocabulary from the training comments only."""
        self.vectorizer_ = self._make()
        try:
            self.vectorizer_.fit([self.clean(t) for t in texts])
        except (
            ValueError
        ) as exc:  # scikit-learn: "empty vocabulary" / "max_df corresponds to < documents than min_df"
            raise DataError(
                f"no words are left in the vocabulary ({exc}). Lower min_df (now {self.min_df}) "
                "or check that the text column really holds text."
            ) from exc
        self.vocabulary_ = list(self.vectorizer_.get_feature_names_out())
        self.index_ = self.vectorizer_.vocabulary_
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Comments -> CSR matrix (rows, vocabulary), float32, with sorted column indices."""
        x = self.vectorizer_.transform([self.clean(t) for t in texts]).tocsr().astype(np.float32)
        x.sort_indices()
        return x

    def analyze(self, text: str) -> list[str]:
        """The tokens (and pairs, with n-grams) that the vectorizer sees in one comment, in order."""
        return list(self.vectorizer_.build_analyzer()(self.clean(text)))

    def tokenize(self, text: str, cleaned: bool = False) -> list[str]:
        """Single words as the vectorizer splits them (lowercased), in order; for the playground. `cleaned`:
        the text went through `clean` already (decoding twice would read "&amp;amp;" as "&")."""
        cleaned = self.vectorizer_.build_preprocessor()(text if cleaned else self.clean(text))
        return list(self.vectorizer_.build_tokenizer()(cleaned))

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary_)

    def state(self) -> dict:
        """JSON-able settings and learned vocabulary (and idf weights for tf-idf), to rebuild it later."""
        idf = getattr(self.vectorizer_, "idf_", None)
        return {
            "kind": self.kind,
            "ngram_max": self.ngram_max,
            "min_df": self.min_df,
            "max_features": self.max_features,
            "decode_entities": self.decode_entities,
            "vocabulary": self.vocabulary_,
            "idf": None if idf is None else [float(v) for v in idf],
        }

    @staticmethod
    def check_state(state: dict) -> None:
        """A saved state (an uploaded model.json's included) within the bounds the app's own settings
        declare, checked before anything is built; ValueError says which value is wrong."""
        if not isinstance(state, dict):
            raise ValueError("the vectorizer settings must be an object")
        if state.get("kind") not in VECTORIZERS:
            raise ValueError(f"unknown vectorizer {state.get('kind')!r}; use one of {list(VECTORIZERS)}")
        for name in ("ngram_max", "min_df", "max_features"):
            value, bound = state.get(name), _BOUNDS[name]
            if value is None and bound["optional"]:
                continue
            whole = isinstance(value, int) and not isinstance(value, bool)
            if not whole or not bound["min"] <= value <= bound["max"]:
                raise ValueError(
                    f"{name} must be a whole number from {bound['min']} to {bound['max']}, got {value!r}"
                )
        if not isinstance(state.get("decode_entities", False), bool):
            raise ValueError(f"decode_entities must be true or false, got {state['decode_entities']!r}")
        vocabulary, cap = state.get("vocabulary"), state["max_features"] or MAX_VOCABULARY
        if not isinstance(vocabulary, list) or not 1 <= len(vocabulary) <= cap:
            size = f"{len(vocabulary):,}" if isinstance(vocabulary, list) else type(vocabulary).__name__
            raise ValueError(f"the vocabulary must be a list of 1 to {cap:,} words, got {size}")
        for feature in vocabulary:
            words = feature.split(" ") if isinstance(feature, str) else None
            if not words or not all(words) or len(words) > state["ngram_max"]:
                raise ValueError(
                    f"vocabulary entry {str(feature)[:40]!r} is not {state['ngram_max']} or fewer words "
                    "separated by single spaces"
                )
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("the vocabulary holds a word twice")
        if state["kind"] == "tfidf":
            idf = state.get("idf")
            if not isinstance(idf, list) or len(idf) != len(vocabulary):
                raise ValueError("tf-idf needs one idf weight per vocabulary word")
            # 0 < v < 1e300 is False for NaN and infinity, and compares a 400-digit integer without overflow
            good = (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1e300 for v in idf)
            if not all(good):
                raise ValueError("every idf weight must be a finite number above 0")

    @classmethod
    def from_state(cls, state: dict) -> BagOfWords:
        """The fitted vectorizer back from `state()` (no refitting, no pickling), checked first
        (`check_state`)."""
        cls.check_state(state)
        # a state saved before entities were decoded reads its comments as it did then
        decode = bool(state.get("decode_entities", False))
        bow = cls(state["kind"], state["ngram_max"], state["min_df"], state["max_features"], decode)
        vec = bow._make()
        vec.set_params(vocabulary=list(state["vocabulary"]), min_df=1, max_features=None)
        vec.fit([" ".join(state["vocabulary"][:1])])  # fixes the vocabulary; idf is replaced below
        if state["kind"] == "tfidf":
            vec.idf_ = np.asarray(state["idf"], np.float64)
        bow.vectorizer_ = vec
        bow.vocabulary_ = list(vec.get_feature_names_out())
        bow.index_ = vec.vocabulary_
        return bow
