"""Predict through the classifier replicas and log every inference; explain through them
too (explanations are not inferences: they are not logged). No FastAPI here.

Concurrent predictions for the same model, version, routing key and ``top_k`` share one call
to a classifier (:mod:`shared.gathering`): a lone one goes at once, those that arrive while
a call is out go together in the next, at most ``max_texts_per_request`` texts. Each keeps
its own deadline (counted from its arrival), its own inference ids and its own log records.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import httpx

from services.gateway.inference_log import InferenceLog
from services.gateway.replicas import Replicas
from services.gateway.shadow_rows import shadow_records
from shared.contracts.classify import ClassifyResponse
from shared.contracts.explain import ExplainResponse
from shared.contracts.gateway import Prediction, PredictResponse
from shared.contracts.review import ClusterResponse
from shared.db.types import utcnow
from shared.errors import InvalidInput, NotFound, Unavailable
from shared.gathering import Gathering
from shared.http import polyhead_error_message
from shared.limits import check_text, check_texts
from shared.request_id import current_request_id, outgoing_headers
from shared.settings import GatewaySettings

log = logging.getLogger(__name__)
_Call = tuple[str, int | None, str, int]  # model, version, routing key, top_k
_Part = tuple[ClassifyResponse, int]  # a text's answer: the call's, and its place in it
_MAX_MESSAGE = 300  # a replica's error message relayed at most this long


class PredictService:
    def __init__(self, settings: GatewaySettings, replicas: Replicas, http: httpx.AsyncClient,
                 inference_log: InferenceLog | None) -> None:
        self.settings, self.replicas, self.http = settings, replicas, http
        self.inference_log = inference_log
        # One replica's time to answer before the next is tried (a hung host is ejected).
        self._try_timeout = httpx.Timeout(settings.try_timeout_s, connect=2.0)
        self._classify: Gathering[_Call, str, _Part] = Gathering(
            self._send_classify, max_items=settings.max_texts_per_request,
            alone=(InvalidInput,))

    def check(self, texts: list[str]) -> None:
        check_texts(texts, max_texts=self.settings.max_texts_per_request,
                    max_chars=self.settings.max_chars_per_text, param="texts")

    async def predict(self, model: str, texts: list[str], top_k: int | None, client: str,
                      version: int | None = None,
                      routing_key: str | None = None) -> PredictResponse:
        """Production's answer, the pinned ``version``'s or the canary's (by ``routing_key``,
        default the client); a shadow's predictions are logged beside, never returned."""
        start = time.perf_counter()
        self.check(texts)
        result = _joined(await self._classify(
            (model, version, routing_key or client, top_k or self.settings.top_k), texts))
        total_ms = (time.perf_counter() - start) * 1000
        ids = [uuid.uuid4().hex for _ in texts]
        if self.inference_log is not None:
            records = inference_records(result, texts, ids, client, total_ms)
            self.inference_log.append(records + shadow_records(result, records))
        return PredictResponse(
            model=result.model, version=result.version, role=result.role, predictions=[
                Prediction(label=p.label, probability=p.probability, top=p.top,
                           abstained=p.abstained, inference_id=i)
                for p, i in zip(result.predictions, ids, strict=True)])

    async def explain(self, model: str, text: str) -> ExplainResponse:
        """Which words moved the answer (the classifier's leave-one-word-out); not logged:
        an explanation is a diagnostic, not an answer a product acts on, so it would only skew
        the reports' volume and label counts."""
        check_text(text, max_chars=self.settings.max_chars_per_text, param="text")
        answer = await self._forward(model, f"/v1/explain/{model}", {"text": text})
        return ExplainResponse.model_validate_json(answer)

    async def cluster(self, model: str, texts: list[str]) -> ClusterResponse:
        """Texts grouped by meaning by a replica (the review queue); not logged either."""
        answer = await self._forward(model, f"/v1/cluster/{model}", {"texts": texts})
        return ClusterResponse.model_validate_json(answer)

    async def _send_classify(self, call: _Call, texts: list[str], since: float) -> list[_Part]:
        """One classify call for ``texts`` (of one request or several gathered); the deadline
        counts from when the oldest of them arrived."""
        model, version, routing_key, top_k = call
        answer = await self._forward(model, f"/v1/classify/{model}", {
            "texts": texts, "top_k": top_k, "version": version, "routing_key": routing_key},
            deadline_s=self.settings.predict_deadline_s, since=since)
        result = ClassifyResponse.model_validate_json(answer)
        return [(result, i) for i in range(len(texts))]

    async def _forward(self, model: str, path: str, body: dict[str, Any],
                       deadline_s: float | None = None, since: float | None = None) -> bytes:
        """POST ``body`` to ``path`` on a replica serving ``model``; its 200 answer's bytes.
        Each replica gets ``try_timeout_s``; all of them together ``deadline_s`` from
        ``since`` (default now: a prediction's, counted from its arrival, so that the edge may
        take a gateway that answers nothing in time for a stuck one). What each answer tells
        outlier detection: :mod:`services.gateway.outliers`.
        """
        urls = self.replicas.order(model)
        if not urls:
            known = ", ".join(self.replicas.models()) or "none yet"
            raise NotFound(f"unknown model {model!r}; known models: {known}", param="model")
        outliers = self.replicas.outliers
        last = "unreachable"
        give_up_at = ((time.monotonic() if since is None else since)
                      + (float("inf") if deadline_s is None else deadline_s))
        for url in urls:
            try_s = min(self.settings.try_timeout_s, give_up_at - time.monotonic())
            if try_s <= 0:
                last = f"no answer within {deadline_s:g} s"
                break
            timeout = (self._try_timeout if try_s == self.settings.try_timeout_s
                       else httpx.Timeout(try_s, connect=2.0))
            try:
                response = await self.http.post(f"{url}{path}", json=body,
                                                headers=outgoing_headers(), timeout=timeout)
            except httpx.TransportError as exc:
                log.warning("classifier replica %s is unreachable: %r", url, exc)
                cut_short = (isinstance(exc, httpx.TimeoutException)
                             and try_s < self.settings.try_timeout_s)
                if cut_short:  # says nothing against the replica: the deadline is up
                    last = f"no answer within {deadline_s:g} s"
                    break
                outliers.transport_failed(url, exc)
                continue
            status, param = response.status_code, _error_param(response)
            if status >= 500 and param is None and "retry-after" not in response.headers:
                outliers.answered_5xx(url, status)  # says the replica itself is broken
            else:
                outliers.responded(url)
            if status == 200:
                return response.content
            if status == 404 and param == "version":
                raise NotFound(_message(response), param="version")  # the model is served
            if status in (404, 429) or status >= 500:
                # Not served there (any more), overloaded, or broken: the next replica may do.
                last = _message(response)
                log.warning("classifier replica %s answered HTTP %d for model %r: %s", url,
                            status, model, last)
                continue
            raise InvalidInput(_message(response))
        # Which replicas failed and how is in the log lines above (with the request id).
        raise Unavailable(f"model {model!r} is unavailable: none of its {len(urls)} classifier "
                          f"replica(s) could answer (last problem: {last}); retry shortly",
                          retry_after_s=1)


def inference_records(result: ClassifyResponse, texts: list[str], ids: list[str], client: str,
                      total_ms: float) -> list[dict[str, Any]]:
    """The inference log's rows of one answered request (one per text, ids given)."""
    now, request_id = utcnow(), current_request_id()
    return [{"id": i, "created_at": now, "request_id": request_id, "client": client,
             "model_name": result.model, "model_version": result.version,
             "head_type": result.head_type, "embedder_model": result.embedder_model,
             "input_text": text, "label": p.label, "probability": p.probability,
             "top_k": {"top": [[s.label, s.probability] for s in p.top]},
             "abstained": p.abstained, "cache_hit": p.cached,
             "embed_ms": result.timings.embed_ms, "head_ms": result.timings.head_ms,
             "total_ms": round(total_ms, 3), "role": result.role, "shadow_of": None}
            for p, text, i in zip(result.predictions, texts, ids, strict=True)]


def _joined(parts: list[_Part]) -> ClassifyResponse:
    """One request's answer from its texts' places in a (perhaps gathered) classify answer."""
    result = parts[0][0]
    if len(parts) == len(result.predictions):
        return result  # the call was this request's alone
    shadow = result.shadow
    if shadow is not None:
        shadow = shadow.model_copy(update={"predictions": [
            shadow.predictions[i] for _, i in parts]})
    return result.model_copy(update={"predictions": [result.predictions[i] for _, i in parts],
                                     "shadow": shadow})


def _error_param(response: httpx.Response) -> str | None:
    """The ``param`` of a polyhead error answer ("model", "version"...): the error is about
    that part of the request, not about the replica."""
    if response.status_code < 400:
        return None
    try:
        param = response.json()["error"]["param"]
    except (ValueError, KeyError, TypeError):
        return None
    return param if isinstance(param, str) else None


def _message(response: httpx.Response) -> str:
    """A replica's error message, else only the status (see ``polyhead_error_message``)."""
    return polyhead_error_message(response, _MAX_MESSAGE) or f"HTTP {response.status_code}"
