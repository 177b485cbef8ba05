"""polyhead's Locust scenarios; pick one by its user class:

    locust -f loadtests/locustfile.py GatewayUser --host http://127.0.0.1:8000    # product apps
    locust -f loadtests/locustfile.py EmbedderUser --host http://127.0.0.1:8001   # embedder only
    locust -f loadtests/locustfile.py RolloutUser --host http://127.0.0.1:8000    # + rollouts

``loadtests/run.sh`` runs one headless and writes CSV stats and an HTML report. Settings are
``LOCUST_*`` environment variables, described in ``gateway.py``, ``embedder.py`` and
``phrases.py`` (repeat ratio, Zipf exponent, batch sizes...).
"""

from embedder import EmbedderUser  # locust puts this directory on sys.path
from gateway import GatewayUser
from rollout import RolloutUser

__all__ = ["EmbedderUser", "GatewayUser", "RolloutUser"]
