"""Gateway service: the public HTTP API in front of polyhead.

Clients call it, not the internal services. It authenticates each request by API key, sends
predictions to a classifier replica that serves the model (the classifiers call the embedder;
the gateway never does), logs every inference (input, head version, prediction, latency) to
PostgreSQL through a local write-ahead log, and forwards training and admin calls to the
trainer. Routes: :mod:`services.gateway.routes`; the predict path: :mod:`.service`.
"""
