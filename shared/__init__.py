"""Code every polyhead service imports: contracts, settings, logging, metrics, clients.

Kept light on purpose (no torch, no service imports) so that any process, a Locust worker
included, can import it cheaply.
"""

__version__ = "0.1.0"
