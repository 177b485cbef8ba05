"""An intent map round-trips through its file and maps rows to unit vectors."""

from __future__ import annotations

import numpy as np

from shared.intent_map import IntentMap


def test_round_trip_keeps_the_map_at_the_stored_precision() -> None:
    rng = np.random.default_rng(0)
    stored = IntentMap(mean=rng.normal(size=8).astype(np.float32),
                       projection=rng.normal(size=(8, 3)).astype(np.float32), distance=0.55)
    loaded = IntentMap.from_file(stored.to_file())
    assert loaded.distance == 0.55
    np.testing.assert_array_equal(loaded.mean, stored.mean)
    assert loaded.projection is not None and stored.projection is not None
    np.testing.assert_array_equal(loaded.projection,
                                  stored.projection.astype(np.float16).astype(np.float32))
    rows = loaded.rows(rng.normal(size=(5, 8)))
    assert rows.shape == (5, 3) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1, rtol=1e-5)


def test_a_map_without_projection_is_the_unit_sentence_vectors() -> None:
    plain = IntentMap.from_file(IntentMap(np.zeros(2, np.float32), None, 0.65).to_file())
    assert (plain.projection, plain.distance) == (None, 0.65)
    np.testing.assert_allclose(plain.rows(np.array([[3.0, 4.0]])), [[0.6, 0.8]])


def test_a_row_at_the_mean_maps_to_zeros_not_nan() -> None:
    identity = IntentMap(mean=np.ones(4, np.float32), projection=np.eye(4, dtype=np.float32),
                         distance=0.5)
    np.testing.assert_array_equal(identity.rows(np.ones((1, 4))), np.zeros((1, 4)))
