"""Locust scenario for rollouts: the gateway scenario, every answer also checked against the
model's shadow or canary (``polyhead shadow`` / ``polyhead canary``).

    LOCUST_API_KEY=ph_... locust -f loadtests/locustfile.py RolloutUser \\
        --host http://127.0.0.1:8000 --headless -u 20 -r 5 -t 1m

Each user reads a model's configuration (``GET /v1/models/{name}``) before its first
prediction of it, then counts as a Locust failure any answer that breaks a rollout's promise
(``rollout_checks.py``):

- a shadow never answers: its role never appears, nor its version, nor a label only the shadow
  knows;
- a canary answers with its version and role ``canary``, production with production's version;
- canary assignment is sticky: a user (one ``routing_key``) that got the canary keeps getting
  it. (Not the other way round: a larger weight lets more users in.)

An answer that breaks one is checked again against a fresh read of the configuration, so a
move between the read and the answer (a promotion, a withdrawal) is not counted as a failure;
after a move, the user's canary stickiness starts over.
"""

from __future__ import annotations

from gateway import GatewayUser  # locust puts this directory on sys.path
from rollout_checks import Rollout

from shared.contracts.gateway import PredictResponse
from shared.contracts.training import ModelInfo


class RolloutUser(GatewayUser):
    def on_start(self) -> None:
        super().on_start()
        self.rollouts: dict[str, Rollout] = {}
        self.on_canary: set[str] = set()  # models whose canary answered this user

    def check(self, model: str, answer: PredictResponse) -> str | None:
        known = self.rollouts.get(model) or self._read(model)
        problem = known.violation(answer, model in self.on_canary)
        if problem is not None and (fresh := self._read(model)) != known:
            self.on_canary.discard(model)  # the configuration moved: stickiness starts over
            problem = fresh.violation(answer, on_canary=False)
        if answer.role == "canary":
            self.on_canary.add(model)
        return problem

    def _read(self, model: str) -> Rollout:
        response = self.client.get(f"/v1/models/{model}", headers=self.headers,
                                   name="model info")
        response.raise_for_status()
        self.rollouts[model] = Rollout.of(ModelInfo.model_validate_json(response.content))
        return self.rollouts[model]
