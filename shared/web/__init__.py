"""The web layer the four services share, and the only part of ``shared/`` that imports FastAPI
or Starlette: the app skeleton, the error table's HTTP side, middleware, dependencies."""
