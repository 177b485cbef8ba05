"""The gateway's HTTP routes, one module per part of the public API; every route needs an API
key (:mod:`services.gateway.deps`). The console's pages are :mod:`services.gateway.console`."""
