"""Padding-free batches, as both CPU backends run them: the plan, the inputs, the pooling.

Short texts of different lengths waste most of a padded batch (CLINC150 phrases average 11
tokens, a batch's longest ~25). Packed, several texts share one row of the input: each text
keeps its own position ids (0..n-1) and attends only to itself (a block-diagonal attention
mask), so no compute goes to padding. A batch is split into rows of about ``budget`` tokens
each, of near-equal size, since attention over a row grows with its square. Batches with
little padding (similar lengths) stay padded: they run faster so (bench/RESULTS.md
"Padding-free batches"). numpy only: the torch and ONNX backends share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Models whose positions are plain 0..n-1 per text, so explicit position ids pack safely.
PACKABLE_MODEL_TYPES = frozenset({"bert"})
# Pack only batches where padding would be over this share of the padded tensor.
PACK_ABOVE_PADDING = 0.25


def worth_packing(lengths: Sequence[int]) -> bool:
    """Whether padding would take over :data:`PACK_ABOVE_PADDING` of the padded batch."""
    return 1 - sum(lengths) / (len(lengths) * max(lengths)) > PACK_ABOVE_PADDING


def pack_rows(lengths: Sequence[int], budget: int) -> list[range]:
    """Consecutive runs of texts, one per row: as few rows as ``budget`` tokens a row allows,
    evenly filled (a text goes to the row its middle token falls in)."""
    total = sum(lengths)
    share = total / -(-total // budget)
    rows: list[range] = []
    start, row, seen = 0, 0, 0
    for index, length in enumerate(lengths):
        wanted = int((seen + length / 2) // share)
        if wanted > row:
            if index > start:
                rows.append(range(start, index))
                start = index
            row = wanted
        seen += length
    rows.append(range(start, len(lengths)))
    return rows


def one_per_row(count: int) -> list[range]:
    """The padded plan: each of ``count`` texts in a row of its own."""
    return [range(text, text + 1) for text in range(count)]


@dataclass(frozen=True)
class Layout:
    """A batch laid out in rows: (rows, width) arrays named as a model's inputs; padding has
    segment -1, at row ends."""

    input_ids: np.ndarray
    position_ids: np.ndarray
    segments: np.ndarray  # the text's index within its row, -1 on padding
    lengths: np.ndarray   # tokens per text, in batch order

    @property
    def attention_mask(self) -> np.ndarray:
        return (self.segments >= 0).astype(np.int64)


def lay_out(texts: Sequence[Sequence[int]], rows: Sequence[range], pad_id: int) -> Layout:
    """``texts`` (token ids, batch order) in ``rows`` (consecutive, covering every text)."""
    lengths = np.array([len(ids) for ids in texts], dtype=np.int64)
    width = max(int(lengths[row.start:row.stop].sum()) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    positions = np.zeros((len(rows), width), dtype=np.int64)
    segments = np.full((len(rows), width), -1, dtype=np.int64)
    for r, row in enumerate(rows):
        offset = 0
        for segment, text in enumerate(row):
            end = offset + len(texts[text])
            ids[r, offset:end] = texts[text]
            positions[r, offset:end] = np.arange(end - offset)
            segments[r, offset:end] = segment
            offset = end
    return Layout(ids, positions, segments, lengths)


def pool_texts(states: np.ndarray, layout: Layout, pooling: str) -> np.ndarray:
    """One unit vector per text (batch order) from token states (rows, width, dim) of
    ``layout``: masked mean, first token (``cls``) or max."""
    tokens = states.reshape(-1, states.shape[-1])[layout.segments.ravel() >= 0]
    starts = np.concatenate(([0], np.cumsum(layout.lengths)[:-1]))
    if pooling == "cls":
        pooled = tokens[starts]
    elif pooling == "max":
        pooled = np.maximum.reduceat(tokens, starts, axis=0)
    else:
        pooled = np.add.reduceat(tokens, starts, axis=0) / layout.lengths[:, None]
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
