"""The sentence-transformers head as a torch module, so an export carries it in its graph,
and the pooling both the module and :class:`TorchBackend` use."""

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


class PooledEncoder(torch.nn.Module):
    """A transformers encoder plus pooling and L2 normalisation: ids and mask in, the sentence
    embedding (pooled as :class:`TorchBackend` and sentence-transformers do) and the lexical
    embedding (the embedding layer's output, mean-pooled: the text's words without context)
    out, each unit length."""

    def __init__(self, encoder: torch.nn.Module, pooling: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                           output_hidden_states=True)
        sentence = pool(out.last_hidden_state, attention_mask, self.pooling)
        lexical = pool(out.hidden_states[0], attention_mask, "mean")
        return (torch.nn.functional.normalize(sentence, p=2, dim=1),
                torch.nn.functional.normalize(lexical, p=2, dim=1))
