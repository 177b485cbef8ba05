"""Phrases for load tests: real CLINC150 queries, repeated as real traffic repeats them.

A fraction ``repeat_ratio`` of phrases are drawn Zipf-like (rank r has weight 1/r**s) from a
fixed pool, so a few phrases are very frequent and most are rare, as with user queries. The
rest are never-seen variants (a corpus phrase with a word swapped, sometimes a prefix/suffix),
which the embedder's phrase cache cannot answer: the test always measures some real compute.

The pool depends only on ``pool_seed``, so every user and every Locust worker share it (their
repeats hit the same cache entries); each user draws with its own random generator.
Variants never change case or spacing only: the embedder normalises those away (and lowercases
for uncased models), which would turn a "new" phrase into a cache hit.

Preview: ``python loadtests/phrases.py 20``.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import os
import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CSV = Path(__file__).resolve().parents[1] / "data" / "clinc150" / "train.csv"
PREFIXES = ("hey", "please", "quick question,", "ok so", "can you help,", "hi there,")
SUFFIXES = ("please", "right now", "thanks", "for tomorrow", "if you can", "asap",
            "again", "for my wife", "this week", "by tonight")


@dataclass(frozen=True)
class PhraseConfig:
    """Settings, usually from ``LOCUST_*`` environment variables (see :meth:`from_env`)."""

    repeat_ratio: float = 0.8   # share of phrases drawn from the pool (cacheable)
    zipf_s: float = 1.1         # Zipf exponent over pool ranks; higher = more skewed
    pool_size: int = 2000       # distinct phrases that repeat
    pool_seed: int = 0          # same pool everywhere unless changed
    csv_path: Path = field(default=DEFAULT_CSV)

    def __post_init__(self) -> None:
        if not 0.0 <= self.repeat_ratio <= 1.0:
            raise ValueError(f"repeat_ratio must be in [0, 1], not {self.repeat_ratio}")
        if self.zipf_s < 0:
            raise ValueError(f"zipf_s must be >= 0, not {self.zipf_s}")
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, not {self.pool_size}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> PhraseConfig:
        d = cls()
        return cls(
            repeat_ratio=float(environ.get("LOCUST_REPEAT_RATIO", d.repeat_ratio)),
            zipf_s=float(environ.get("LOCUST_ZIPF_S", d.zipf_s)),
            pool_size=int(environ.get("LOCUST_POOL_SIZE", d.pool_size)),
            pool_seed=int(environ.get("LOCUST_POOL_SEED", d.pool_seed)),
            csv_path=Path(environ.get("LOCUST_PHRASES_CSV", d.csv_path)),
        )


def load_corpus(path: Path) -> list[str]:
    """Distinct texts of a ``text,label`` CSV, in file order."""
    with path.open(newline="", encoding="utf-8") as f:
        texts = (row["text"].strip() for row in csv.DictReader(f))
        return list(dict.fromkeys(t for t in texts if t))


class PhraseGenerator:
    """Draws phrases: Zipf repeats from the pool, or fresh variants of corpus phrases."""

    def __init__(self, corpus: list[str], config: PhraseConfig,
                 rng: random.Random | None = None) -> None:
        if not corpus:
            raise ValueError("empty phrase corpus")
        self.config = config
        self.rng = rng or random.Random()
        shuffled = corpus[:]
        random.Random(config.pool_seed).shuffle(shuffled)  # ranks not grouped by intent
        self.pool = shuffled[:config.pool_size]
        self.corpus = corpus
        self._known = set(corpus)
        weights = (1.0 / rank ** config.zipf_s for rank in range(1, len(self.pool) + 1))
        self._cum = list(itertools.accumulate(weights))
        self.vocabulary = sorted({w for text in corpus for w in text.split() if w.isalpha()})

    @classmethod
    def from_config(cls, config: PhraseConfig, rng: random.Random | None = None
                    ) -> PhraseGenerator:
        return cls(load_corpus(config.csv_path), config, rng)

    def repeat(self) -> str:
        """A pool phrase, rank r with probability proportional to 1/r**s."""
        x = self.rng.random() * self._cum[-1]
        return self.pool[min(bisect.bisect_left(self._cum, x), len(self.pool) - 1)]

    def novel(self) -> str:
        """A corpus phrase with one word swapped (and half the time a prefix or suffix).

        The swap alone gives ~10^8 variants, so repeats among novel phrases stay negligible;
        a variant that happens to be a corpus phrase is redrawn.
        """
        for _ in range(10):
            words = self.rng.choice(self.corpus).split()
            if len(self.vocabulary) > 1:
                i = self.rng.randrange(len(words))
                words[i] = self._other_word(words[i])
            if self.rng.random() < 0.5 or len(self.vocabulary) < 2:
                if self.rng.random() < 0.5:
                    words.insert(0, self.rng.choice(PREFIXES))
                else:
                    words.append(self.rng.choice(SUFFIXES))
            text = " ".join(words)
            if text not in self._known:
                break
        return text

    def next(self) -> str:
        return self.repeat() if self.rng.random() < self.config.repeat_ratio else self.novel()

    def batch(self, n: int) -> list[str]:
        return [self.next() for _ in range(n)]

    def _other_word(self, word: str) -> str:
        while (other := self.rng.choice(self.vocabulary)) == word:
            pass
        return other


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    generator = PhraseGenerator.from_config(PhraseConfig.from_env())
    print("\n".join(generator.batch(n)))
