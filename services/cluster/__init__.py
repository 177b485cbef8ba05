"""polyhead as a small cluster on one Linux machine (``scripts/cluster``): see
:mod:`services.cluster.cluster`."""
