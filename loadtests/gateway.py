"""Locust scenario for the public API: predictions (single and batch) and some feedback.

    LOCUST_API_KEY=ph_... locust -f loadtests/locustfile.py GatewayUser \\
        --host http://127.0.0.1:8000 --headless -u 20 -r 5 -t 1m

Bodies use the shared request contract and every answer is validated against the response
contract. Each simulated user sends a ``routing_key`` of its own, so while a model has a canary
(``polyhead canary``) a user stays on one version, as a real one would; ``RolloutUser``
(``rollout.py``) also checks that it does.

Settings: ``LOCUST_API_KEY`` (a key with the predict scope), ``LOCUST_MODELS``
(comma-separated models to spread traffic over; default clinc-intents, the demo head of
``polyhead up``), ``LOCUST_BATCH_MAX`` (texts per batch request, 8),
``LOCUST_FEEDBACK_RATIO`` (share of predictions that get a feedback call, 0.05), plus the
phrase settings of ``phrases.py``.
"""

from __future__ import annotations

import itertools
import os
import random
from typing import Any

from locust import FastHttpUser, between, task
from phrases import PhraseConfig, PhraseGenerator, load_corpus  # locust puts this dir on sys.path
from pydantic import ValidationError

from shared.contracts.gateway import FeedbackRequest, PredictRequest, PredictResponse

CONFIG = PhraseConfig.from_env()
CORPUS = load_corpus(CONFIG.csv_path)
KEY = os.environ.get("LOCUST_API_KEY", "")
MODELS = [m.strip() for m in os.environ.get("LOCUST_MODELS", "clinc-intents").split(",")
          if m.strip()]
BATCH_MAX = int(os.environ.get("LOCUST_BATCH_MAX", "8"))
FEEDBACK_RATIO = float(os.environ.get("LOCUST_FEEDBACK_RATIO", "0.05"))


# Distributed runs: give each worker its own prefix (LOCUST_ROUTING_PREFIX) so keys stay unique.
KEY_PREFIX = os.environ.get("LOCUST_ROUTING_PREFIX", "user")
USER_NUMBERS = itertools.count()


class GatewayUser(FastHttpUser):
    wait_time = between(0.0, float(os.environ.get("LOCUST_MAX_WAIT_S", "0")))

    def on_start(self) -> None:
        self.phrases = PhraseGenerator(CORPUS, CONFIG, random.Random())
        self.headers = {"Authorization": f"Bearer {KEY}"}
        # Numbered, not random: which users a canary takes is then the same every run.
        self.routing_key = f"{KEY_PREFIX}-{next(USER_NUMBERS)}"

    @task(4)
    def single(self) -> None:
        self._predict(PredictRequest(text=self.phrases.next(), routing_key=self.routing_key),
                      "predict [1]")

    @task(1)
    def batch(self) -> None:
        texts = self.phrases.batch(self.phrases.rng.randint(2, BATCH_MAX))
        self._predict(PredictRequest(texts=texts, routing_key=self.routing_key),
                      "predict [batch]")

    def _predict(self, body: PredictRequest, name: str) -> None:
        expected = len(body.all_texts())
        model = self.phrases.rng.choice(MODELS)
        with self.client.post(f"/v1/models/{model}/predict", headers=self.headers,
                              json=body.model_dump(exclude_none=True), name=f"{name} {model}",
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            answer = self._parse(response.content)
            if isinstance(answer, str) or len(answer.predictions) != expected:
                response.failure(answer if isinstance(answer, str) else
                                 f"{len(answer.predictions)} predictions for {expected} texts")
                return
            problem = self.check(model, answer)
            if problem is not None:
                response.failure(problem)
                return
        first = answer.predictions[0]
        if first.label is not None and self.phrases.rng.random() < FEEDBACK_RATIO:
            self.client.post(f"/v1/inferences/{first.inference_id}/feedback",
                             headers=self.headers, name="feedback",
                             json=FeedbackRequest(label=first.label).model_dump())

    def check(self, model: str, answer: PredictResponse) -> str | None:
        """What is wrong with a valid answer beyond its contract: nothing here; the rollout
        scenario (``rollout.py``) checks versions and roles."""
        return None

    @staticmethod
    def _parse(content: Any) -> PredictResponse | str:
        try:
            return PredictResponse.model_validate_json(content)
        except ValidationError as exc:
            return f"response breaks the contract: {exc.errors()[0]['msg']}"
