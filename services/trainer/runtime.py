"""Build the trainer's parts from settings, once per process (API or worker)."""

from __future__ import annotations

from services.trainer.jobs import JobStore
from services.trainer.pipeline import Runtime
from shared.artifacts import ArtifactStore
from shared.clients.embedder import EmbedderClient
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.registry import Registry
from shared.settings import EmbedderClientSettings, TrainerSettings


def build_runtime(settings: TrainerSettings, embedder: EmbedderClient | None = None) -> Runtime:
    engine = make_engine(settings.database_url)
    if settings.auto_migrate:
        upgrade(engine)
    sessions = session_factory(engine)
    client_settings = EmbedderClientSettings()
    client_settings.timeout_s = max(client_settings.timeout_s, 60.0)  # big training batches
    return Runtime(settings=settings, jobs=JobStore(sessions), registry=Registry(sessions),
                   store=ArtifactStore(settings.artifact_store),
                   embedder=embedder or EmbedderClient(client_settings), engine=engine)
