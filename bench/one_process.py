"""The hop tax's reference: polyhead's parts in ONE process, as a team would fuse them.

The embedder's backend with its batching engine and phrase cache (LRU and Redis), the
production head from the registry, and the gateway's write-ahead log shipped to PostgreSQL,
behind one FastAPI route that takes the gateway's request body. No hops: what
``bench/serving.py`` measures against it (``one_process_ratio``) is what the split into
services costs. It answers what the gateway answers, minus API keys and rollouts.

    .venv/bin/python bench/one_process.py --port 18105   # env as bench/serving.py's stack
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import numpy as np
import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from services.classifier.head_set import HeadSet
from services.classifier.routing import text_predictions
from services.embedder.app import build_service
from services.embedder.backends import load_backend
from services.gateway.app import inference_log_for
from services.gateway.service import inference_records
from shared.artifacts import ArtifactStore
from shared.contracts.classify import ClassifyResponse, Timings
from shared.contracts.gateway import Prediction, PredictRequest, PredictResponse
from shared.db import make_engine, session_factory
from shared.metrics import exposition
from shared.registry import Registry
from shared.settings import ClassifierSettings, EmbedderSettings, GatewaySettings
from shared.text import clean

CLIENT = "one-process"  # the ``client`` of its rows, apart from the gateway's


def create_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        embedder_settings, gateway = EmbedderSettings(), GatewaySettings()
        engine = make_engine(gateway.database_url.get_secret_value())
        app.state.embedder = build_service(embedder_settings, load_backend(embedder_settings))
        app.state.heads = HeadSet(Registry(session_factory(engine)),
                                  ArtifactStore(ClassifierSettings().artifact_store))
        app.state.heads.refresh()
        app.state.log = inference_log_for(gateway, engine)
        app.state.log.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(app.state.log.stop)
            await anyio.to_thread.run_sync(app.state.embedder.engine.stop)
            engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}  # served only once the lifespan has loaded everything

    @app.get("/metrics")
    async def metrics() -> Response:
        """The embedder's metrics (forward passes...), as the embedder service exposes them."""
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/models/{name}/predict")
    async def predict(name: str, body: PredictRequest) -> PredictResponse:
        began = time.perf_counter()
        texts = body.all_texts()
        served = app.state.heads.get(name)
        results = await app.state.embedder.embed([clean(t) for t in texts])
        rows = np.stack([r.embedded.features for r in results])
        embedded = time.perf_counter()
        answers = await anyio.to_thread.run_sync(served.head.predict, rows, body.top_k or 3)
        total_ms = (time.perf_counter() - began) * 1000
        result = ClassifyResponse(  # what the classifier would answer, for the same log rows
            model=name, version=served.version, head_type=served.head.kind,
            embedder_model=app.state.embedder.info.model_id,
            predictions=text_predictions(answers, [r.source != "computed" for r in results]),
            timings=Timings(embed_ms=(embedded - began) * 1000,
                            head_ms=total_ms - (embedded - began) * 1000, total_ms=total_ms))
        ids = [uuid.uuid4().hex for _ in texts]
        app.state.log.append(inference_records(result, texts, ids, CLIENT, total_ms))
        return PredictResponse(model=name, version=served.version, role="production",
                               predictions=[Prediction(label=p.label, probability=p.probability,
                                                       top=p.top, abstained=p.abstained,
                                                       inference_id=i)
                                            for p, i in zip(result.predictions, ids,
                                                            strict=True)])

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False)
