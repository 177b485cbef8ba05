"""Pooling for :class:`TorchBackend`'s padded batches, and the encoder wrappers an ONNX export
traces (:mod:`onnx_export`): they return token states, which the backend pools per text."""

from __future__ import annotations

import torch


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per text of ``hidden`` (batch, tokens, dim): masked mean, CLS or max."""
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if pooling == "max":
        return hidden.masked_fill(weights == 0, -1e9).max(dim=1).values
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class TokenStates(torch.nn.Module):
    """A transformers encoder on padded rows: ids and mask in; per token, the last hidden state
    (pooled into the sentence vector) and the embedding layer's output (pooled into the
    lexical vector: the text's words without context) out."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                           output_hidden_states=True)
        return out.last_hidden_state, out.hidden_states[0]


class PackedTokenStates(torch.nn.Module):
    """:class:`TokenStates` on packed rows (:mod:`packing`): ids, per-text positions and
    segments in; each token attends only to tokens of its own segment (an additive mask, as
    eager attention takes it)."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor,
                segments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        apart = (segments[:, :, None] != segments[:, None, :])[:, None]  # (rows, 1, T, T)
        mask = torch.zeros(apart.shape).masked_fill(apart, torch.finfo(torch.float32).min)
        out = self.encoder(input_ids=input_ids, position_ids=position_ids, attention_mask=mask,
                           token_type_ids=torch.zeros_like(input_ids), output_hidden_states=True)
        return out.last_hidden_state, out.hidden_states[0]
