"""How much memory the in-process phrase cache costs per entry (sizes EMBEDDER_LRU_SIZE).

Fills a PhraseCache LRU with N real-length CLINC150-like keys and features rows, the way the
service stores them (float32 [sentence | lexical]: twice the model's dimension, 384 for the
default model), and prints one JSON line with the resident-memory growth.
Run: .venv/bin/python bench/lru_memory.py [--entries 50000] [--dimension 384]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource

import numpy as np

from services.embedder.cache import PhraseCache
from services.embedder.engine import Embedded


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--dimension", type=int, default=384)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    gc.collect()
    before = rss_mib()
    cache = PhraseCache(args.entries, redis=None)
    for i in range(args.entries):
        row = rng.standard_normal(2 * args.dimension).astype(np.float32)
        row.flags.writeable = False
        key = f"how do i say phrase number {i} in french please"  # ~45 chars, like CLINC150
        cache.put_many({key: Embedded(row, tokens=12, truncated=False)})
    gc.collect()
    grown = rss_mib() - before
    print(json.dumps({"entries": args.entries, "dimension": args.dimension,
                      "rss_growth_mib": round(grown, 1),
                      "bytes_per_entry": round(grown * 2**20 / args.entries),
                      "row_bytes": 2 * args.dimension * 4}))


if __name__ == "__main__":
    main()
