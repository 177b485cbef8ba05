"""The central embedding service: one model, micro-batched, behind a phrase cache."""
