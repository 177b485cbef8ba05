"""The sentence-transformers head as a torch module, so an export carries it in its graph."""

from __future__ import annotations

import torch


class PooledEncoder(torch.nn.Module):
    """A transformers encoder plus pooling and L2 normalisation: ids and mask in, embeddings out.

    Pools as :class:`TorchBackend` does (and sentence-transformers): masked mean, CLS or max.
    """

    def __init__(self, encoder: torch.nn.Module, pooling: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            if self.pooling == "max":
                pooled = hidden.masked_fill(weights == 0, -1e9).max(dim=1).values
            else:
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)
