"""Contracts of ``explain``: which words moved a model's answer for one text.

The gateway's public route and the classifier's internal one take and give the same models.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from shared.contracts.body import RequestBody
from shared.contracts.classify import LabelScore
from shared.contracts.text import Text


class ExplainRequest(RequestBody):
    """One text, explained with the production version of the model."""

    text: Text = Field(examples=["where is my parcel"])


class WordInfluence(BaseModel):
    word: str
    start: int = Field(description="character offset of the word in the text sent")
    end: int = Field(description="offset just past the word: text[start:end] == word")
    delta: float = Field(description="p(explained_label | text) minus p(explained_label | "
                         "text without this word): positive when the word supports the label")


class ExplainResponse(BaseModel):
    model: str
    version: int
    label: str | None = Field(description="the answer predict gives: null when the model "
                              "abstains (out of scope)")
    abstained: bool
    explained_label: str = Field(description="the most probable label, explained even when "
                                 "the model abstains")
    probability: float = Field(description="of explained_label, for the whole text")
    runner_up: LabelScore | None = Field(description="the second most probable label "
                                         "(null for a one-label model)")
    words: list[WordInfluence] = Field(description="every word of the text, in order")
