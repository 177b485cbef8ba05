"""The packing plan (rows of texts), its inputs and per-text pooling, on plain arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from services.embedder.backends.packing import lay_out, pack_rows, pool_texts, worth_packing


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=200), st.integers(16, 512))
def test_rows_cover_every_text_in_order_and_are_as_few_as_the_budget_allows(
        lengths: list[int], budget: int) -> None:
    rows = pack_rows(lengths, budget)
    assert [i for row in rows for i in row] == list(range(len(lengths)))
    assert all(len(row) > 0 for row in rows)
    total = sum(lengths)
    assert len(rows) <= -(-total // budget)
    share = total / -(-total // budget)
    for row in rows:  # even: a row passes its share by less than one text
        assert sum(lengths[i] for i in row) < share + max(lengths)


def test_rows_are_even_not_greedy() -> None:
    """300 tokens at a 256 budget: two rows of 150, not 256 then 44 (attention grows with the
    square of a row)."""
    assert pack_rows([10] * 30, 256) == [range(0, 15), range(15, 30)]
    assert pack_rows([300, 5, 5], 256) == [range(0, 1), range(1, 3)]  # a long text alone
    assert pack_rows([7, 9], 256) == [range(0, 2)]


def test_layout_restarts_positions_per_text_and_pads_row_ends() -> None:
    layout = lay_out([[5, 6, 7], [8, 9], [4]], [range(0, 2), range(2, 3)], pad_id=0)
    np.testing.assert_array_equal(layout.input_ids, [[5, 6, 7, 8, 9], [4, 0, 0, 0, 0]])
    np.testing.assert_array_equal(layout.position_ids, [[0, 1, 2, 0, 1], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(layout.segments, [[0, 0, 0, 1, 1], [0, -1, -1, -1, -1]])
    np.testing.assert_array_equal(layout.attention_mask, [[1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(layout.lengths, [3, 2, 1])


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_pooling_per_text_matches_each_text_alone(pooling: str) -> None:
    rng = np.random.default_rng(0)
    texts = [[1] * 3, [1] * 2, [1] * 4, [1] * 1]
    layout = lay_out(texts, [range(0, 2), range(2, 4)], pad_id=0)
    states = rng.normal(size=(*layout.input_ids.shape, 8)).astype(np.float32)
    states[layout.segments < 0] = 1e6  # padding must never reach a text's vector
    pooled = pool_texts(states, layout, pooling)
    spans = [(0, 0, 3), (0, 3, 5), (1, 0, 4), (1, 4, 5)]
    for text, (row, start, end) in enumerate(spans):
        own = states[row, start:end]
        expected = {"mean": own.mean(0), "cls": own[0], "max": own.max(0)}[pooling]
        np.testing.assert_allclose(pooled[text], expected / np.linalg.norm(expected), rtol=1e-5)


def test_only_batches_with_much_padding_are_packed() -> None:
    assert worth_packing([4, 12, 25, 9])
    assert not worth_packing([20, 22, 21, 24])  # similar lengths: padded runs faster
    assert not worth_packing([13])
