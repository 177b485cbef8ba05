"""``polyhead``: the command line for people, over the services' HTTP APIs.

One module per command (``train``, ``versions``: models, promote and rollback, ``explain``,
``shadow_canary``: shadow, canary and withdraw, ``compare``, ``keys``, ``up``,
``export_model``); ``main`` wires them into one parser; ``trainer_api`` and ``gateway_api``
are the two ways a command talks to a service.
"""
