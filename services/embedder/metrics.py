"""The embedder's Prometheus metrics (the HTTP latency histogram comes from shared)."""

from prometheus_client import Counter, Gauge, Histogram

BATCH_SIZE = Histogram("polyhead_embedder_batch_size", "Texts per forward pass.",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
BATCH_TOKENS = Histogram("polyhead_embedder_batch_padded_tokens",
                         "Padded tokens per forward pass (batch size x longest text).",
                         buckets=(16, 64, 256, 1024, 4096, 16384, 65536))
FORWARD_SECONDS = Histogram("polyhead_embedder_forward_seconds", "Model forward pass duration.",
                            buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
QUEUE_DEPTH = Gauge("polyhead_embedder_queue_texts", "Texts waiting for or in a forward pass.",
                    multiprocess_mode="livesum")
REJECTED = Counter("polyhead_embedder_rejected_texts_total", "Texts refused: queue full.")
TEXTS = Counter("polyhead_embedder_texts_total", "Texts answered, by where the vector came from.",
                ["source"])  # lru | redis | computed
# tier: lru | redis; result: hit | miss
CACHE_LOOKUPS = Counter("polyhead_embedder_cache_lookups_total",
                        "Cache lookups by tier and result.", ["tier", "result"])
CACHE_HIT_RATIO = Gauge("polyhead_embedder_cache_hit_ratio",
                        "Hit ratio since start, by tier (also derivable from the lookups counter).",
                        ["tier"], multiprocess_mode="mostrecent")
REDIS_ERRORS = Counter("polyhead_embedder_redis_errors_total",
                       "Redis calls that failed or timed out (served without Redis), and "
                       "entries that could not be read (op=decode: computed again).", ["op"])
