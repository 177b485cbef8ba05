"""Which embeddings a vector belongs to: model, revision and precision class.

Vectors from different runtimes or precisions of one model are different embeddings: a head
trained on int8 vectors is not the head for fp32 ones, and a cached fp16 vector must not answer
an fp32 request. Exact backends (torch fp32, ONNX Runtime fp32: cosine >= 0.9999 to each other)
share one identity; every lossy precision (fp16, bf16, int8) has its own.

Written as ``<model id>@<revision>:<precision>``, e.g.
``sentence-transformers/all-MiniLM-L6-v2@3f1c0a9b2d4e:fp32``. The revision is a short hash of
the model's files (or the Hub commit), so retrained or re-downloaded weights differ too.

Heads saved before identities existed record only the model id: they are taken as the exact
(fp32) embeddings of that model, whatever its revision (:func:`accepts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

Precision = Literal["fp32", "fp16", "bf16", "int8"]
EXACT: Precision = "fp32"
_PRECISIONS = ("fp32", "fp16", "bf16", "int8")


@dataclass(frozen=True)
class EmbeddingIdentity:
    model: str
    revision: str
    precision: Precision

    def __str__(self) -> str:
        return f"{self.model}@{self.revision}:{self.precision}"

    @classmethod
    def parse(cls, text: str) -> EmbeddingIdentity:
        model, sep, rest = text.rpartition("@")
        revision, colon, precision = rest.partition(":")
        if not (sep and colon and model and revision) or precision not in _PRECISIONS:
            raise ValueError(f"not an embedding identity: {text!r} "
                             "(expected <model>@<revision>:<precision>)")
        return cls(model, revision, cast(Precision, precision))  # checked just above

    @property
    def exact(self) -> bool:
        return self.precision == EXACT


def accepts(recorded: str | None, recorded_model: str, served: str) -> bool:
    """May vectors of identity ``served`` feed a head that recorded ``recorded``?

    ``recorded`` None (a head saved before identities) means the exact embeddings of
    ``recorded_model``, any revision.
    """
    if recorded is not None:
        return recorded == served
    try:
        identity = EmbeddingIdentity.parse(served)
    except ValueError:
        return False
    return identity.model == recorded_model and identity.exact
