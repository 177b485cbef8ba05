"""Publishing heads to the registry the way the trainer does, without running a job."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from services.trainer.fitters import FitSpec, fit
from services.trainer.in_scope import PROTOTYPES_PER_LABEL, prototypes as label_prototypes
from shared.artifacts import ArtifactStore
from shared.clients.embedder import EmbedderClient
from shared.contracts.embeddings import FeatureSet
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.in_scope import InScopeScore
from shared.registry import Registry
from shared.settings import EmbedderClientSettings

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def publish(db_url: str, store_dir: Path, name: str, rows: list[tuple[str, str]],
            embedder_url: str | None, *, embedder_model: str = MODEL, promote: bool = True,
            format_3: bool = False, extra_files: dict[str, bytes] | None = None,
            prototypes: bool = False) -> int:
    """Fit a head on real features rows (or random ones) and register it, as the trainer
    would; ``format_3``: a head on sentence vectors alone, saved as format 3 (before heads
    recorded their features); ``extra_files``: more files of the version (an intent map);
    ``prototypes``: with the trainer's per-label prototypes (an in-scope score that does not
    abstain: no threshold)."""
    labels = sorted({label for _, label in rows})
    y = np.array([labels.index(label) for _, label in rows])
    features: FeatureSet = "sentence" if format_3 else "sentence+lexical"
    if embedder_url:
        with EmbedderClient(EmbedderClientSettings(url=embedder_url)) as client:
            x = client.features([t for t, _ in rows]).head_rows
    else:
        x = np.random.default_rng(0).normal(size=(len(rows), 768)).astype(np.float32)
    x = x if features == "sentence+lexical" else x[:, :384]
    head, _ = fit(FitSpec(kind="logreg", features=features), x, y, labels,
                  embedder_model=embedder_model)
    if prototypes:
        head.in_scope_score = InScopeScore(
            prototypes=label_prototypes(x[:, :384], y, len(labels), seed=0), center=(0.0, 0.0),
            scale=(1.0, 1.0))
        head.prototype_labels = np.repeat(np.arange(len(labels)), np.minimum(
            np.bincount(y, minlength=len(labels)), PROTOTYPES_PER_LABEL))
    files = head.to_files() | (extra_files or {})
    if format_3:
        meta = json.loads(files["head.json"])
        files["head.json"] = json.dumps({k: v for k, v in meta.items()
                                         if k not in ("features", "input_dim")}
                                        | {"format_version": 3}).encode()
    engine = make_engine(db_url)
    upgrade(engine)
    registry, store = Registry(session_factory(engine)), ArtifactStore(str(store_dir))
    version = registry.register(name, write=lambda v: store.write_version(name, v, files),
                                head_type="logreg", embedder_model=embedder_model,
                                embedder_dim=384, num_classes=len(labels), train_rows=len(rows),
                                weighted_f1=0.9, params={},
                                metrics={"class_counts": {lab: [r[1] for r in rows].count(lab)
                                                          for lab in labels}}, data_fingerprint="",
                                job_id=None).version
    if promote:
        registry.promote(name, version)
    engine.dispose()
    return version
