"""The base of every public JSON request body: unknown fields are refused, not ignored.

A typo such as ``{"text": "hi", "topk": 5}`` would otherwise be dropped silently and answer with
the default. It is a 422 instead, naming the field and the allowed ones (the error handler turns
the ``unknown_field`` error into that sentence, with the field's path as ``param``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

_MAX_NAME = 64  # an unknown key is quoted back at most this long


class RequestBody(BaseModel):
    # forbid: the OpenAPI schema says so (additionalProperties: false); the validator below
    # runs first and gives the better message.
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [str(key) for key in data if key not in cls.model_fields]
            if unknown:
                raise PydanticCustomError(
                    "unknown_field", "unknown field {field}; the allowed fields are {allowed}",
                    {"field": unknown[0][:_MAX_NAME], "allowed": ", ".join(cls.model_fields)})
        return data
