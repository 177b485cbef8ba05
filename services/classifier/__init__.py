"""Classifier service: many lightweight heads over the embedder's vectors.

Each head is a small model (e.g. logistic regression) that turns an embedding into a label, so
one process can serve hundreds of them next to a single shared embedder. Heads are versioned:
a new version is hot-reloaded without a restart, and a bad one can be rolled back to the
previous version.
"""
