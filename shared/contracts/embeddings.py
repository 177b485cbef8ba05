"""The embedder's API, shaped like OpenAI's ``/v1/embeddings`` so existing clients work.

polyhead adds a few fields OpenAI clients ignore: ``truncated`` and ``cached`` per item, the
``embedding_identity`` of the vectors (model, revision, precision: see
``shared.embedding_identity``), and the model's ``dimension``, ``max_tokens``, ``backend`` and
``identity`` on the model card.

``/v1/features`` (polyhead's own, for classifier heads) takes the same input and answers each
text's features row: its sentence vector then its lexical vector (the mean of the model's
embedding layer output: which words it has, without their context), each unit length.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator

from shared.contracts.body import RequestBody
from shared.contracts.text import storable_text


class EmbeddingRequest(RequestBody):
    """``input`` is one text or a list of texts; numbers or token arrays are refused.

    Every field of OpenAI's embeddings request is accepted (``user`` is ignored); anything else
    is refused with the allowed fields, as OpenAI does.
    """

    input: str | list[str] = Field(
        description="A text, or a list of texts, to embed.",
        examples=["where is my parcel", ["book a table for two", "what's my balance"]],
    )
    model: str | None = Field(None, description="Optional; must name the served model.")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="base64: little-endian float32 bytes, smaller and faster to parse.")
    dimensions: int | None = Field(None, description="Optional; must equal the model's dimension.")
    user: str | None = Field(None, description="Optional end-user id (OpenAI's); ignored.")

    @field_validator("input", mode="before")
    @classmethod
    def _strings_only(cls, value: Any) -> Any:
        """Say which item is wrong, instead of pydantic's per-union-branch messages."""
        if isinstance(value, str):
            try:
                return storable_text(value)
            except ValueError as exc:
                raise ValueError(f"input {exc}") from None
        if isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    raise ValueError(f"input[{i}] is {type(item).__name__}, not a string "
                                     "(token arrays are not supported)")
                try:
                    storable_text(item)
                except ValueError as exc:
                    raise ValueError(f"input[{i}] {exc}") from None
            return value
        raise ValueError(f"input must be a string or a list of strings, not {type(value).__name__}")

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


FeatureSet = Literal["sentence", "sentence+lexical"]  # what a classifier head takes
SENTENCE_LEXICAL: Literal["sentence+lexical"] = "sentence+lexical"


class FeaturesRequest(EmbeddingRequest):
    """The same input as ``/v1/embeddings``; rows travel as base64 unless asked otherwise."""

    encoding_format: Literal["float", "base64"] = Field(
        "base64", description="base64 (the default here): little-endian float32 bytes.")


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str
    truncated: bool = Field(False, description="The text was cut at the model's max length.")
    cached: bool = Field(False, description="Served from the phrase cache, no compute.")

    def vector(self) -> np.ndarray:
        """The embedding as float32, whichever encoding the server used."""
        if isinstance(self.embedding, str):
            return np.frombuffer(base64.b64decode(self.embedding), dtype="<f4")
        return np.asarray(self.embedding, dtype=np.float32)


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: Usage
    embedding_identity: str | None = Field(
        None, description="Which embeddings these are: <model>@<revision>:<precision>. "
                          "Vectors of different identities must not be mixed.")

    def matrix(self) -> np.ndarray:
        """All embeddings as one (n, dim) float32 array, in input order."""
        rows = sorted(self.data, key=lambda d: d.index)
        return np.stack([d.vector() for d in rows]) if rows else np.zeros((0, 0), np.float32)


class FeaturesResponse(EmbeddingResponse):
    """Each item's ``embedding`` is a features row, ``2 * dimension`` long."""

    dimension: int = Field(description="The sentence vector's length (and the lexical's).")
    features: Literal["sentence+lexical"] = Field(
        SENTENCE_LEXICAL, description="What a row holds, in order: [sentence | lexical].")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "polyhead"
    dimension: int
    max_tokens: int
    device: str
    dtype: str
    backend: str = Field(description="torch, onnx or onnx-int8")
    backend_chosen_by: str = Field("EMBEDDER_BACKEND", description="why this backend: the "
                                   "setting, or (EMBEDDER_BACKEND=auto on CPU) the exact "
                                   "backends' speeds measured on this CPU at the first start")
    identity: str = Field(description="<model>@<revision>:<precision>; exact backends share one")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
