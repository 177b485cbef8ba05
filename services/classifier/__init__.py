"""Classifier service: many lightweight heads over the embedder's vectors.

Each head is a small model (e.g. logistic regression) that turns an embedding into a label, so
one process can serve hundreds of them next to a single shared embedder. Heads are versioned:
a new version is hot-reloaded without a restart, and a bad one can be rolled back to the
previous version.
"""

import os

# A head is a few small matrix products, run from many request threads at once: OpenBLAS's
# own threads would only spin against each other (8 threads predicting at once: ~5 ms of CPU
# per prediction instead of 0.06, bench/rollout.py). Set before NumPy loads; an explicit
# OPENBLAS_NUM_THREADS wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
