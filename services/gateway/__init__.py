"""Gateway service: the public HTTP API in front of polyhead.

Clients call it, not the internal services: it routes each request to the right classifier
head (via the embedder and classifier services), and logs every inference (input, head
version, prediction, latency) to PostgreSQL for auditing and later retraining.
"""
