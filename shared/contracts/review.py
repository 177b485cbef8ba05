"""Contracts of the review queue: the inferences a model abstained on or was unsure of, grouped
by meaning (candidate new intents), and labels for them that go in as feedback.

The classifier's internal ``/v1/cluster/{model}`` groups texts; the gateway's public
``/v1/models/{name}/review`` picks the texts from the inference log and answers the groups with
their inferences, and ``/v1/models/{name}/review/labels`` labels inferences by id.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from shared.contracts.body import RequestBody
from shared.contracts.gateway import FeedbackRequest
from shared.contracts.text import Text

MAX_REVIEW_TEXTS = 2000  # texts one review clusters, and inferences one labelling labels


class ClusterRequest(RequestBody):
    texts: list[Text] = Field(min_length=1, max_length=MAX_REVIEW_TEXTS,
                             examples=[["book a table for two", "reserve a table tonight"]])


class TextCluster(BaseModel):
    members: list[int] = Field(description="indexes into the texts sent, nearest the centre "
                               "first")
    keywords: list[str] = Field(description="the words that set these texts apart from the "
                                "others sent (class-based TF-IDF), most distinctive first")
    proposed_label: str = Field(description="a name for the intent, from its two most "
                                "distinctive words (\"unnamed\" without any)",
                                examples=["credit_score"])
    nearest_label: str | None = Field(description="the production version's label whose "
                                      "prototypes lie nearest the cluster's centre")
    similarity: float | None = Field(description="cosine of the centre to that label's "
                                     "nearest prototype; null for a head without prototypes "
                                     "(then nearest_label is its top label for the centre)")


class ClusterResponse(BaseModel):
    model: str
    version: int = Field(description="the production version whose embedder and labels were used")
    clusters: list[TextCluster] = Field(description="groups of two texts or more, largest first")
    unclustered: list[int] = Field(description="indexes of the texts like no other")
    near_known: list[int] = Field(description="indexes of the texts nearer a known label's "
                                  "examples than to the other texts sent: unsure answers "
                                  "between known labels, not candidate new intents")


class ReviewText(BaseModel):
    """One distinct text of the queue and every inference of it in the window."""

    text: str = Field(description="as last sent")
    inference_ids: list[str] = Field(description="the inferences of this text, newest first")
    label: str | None = Field(description="the latest answer: null when the model abstained")
    probability: float = Field(description="the latest answer's top probability")
    abstained: bool
    last_seen: datetime


class ReviewCluster(BaseModel):
    texts: list[ReviewText] = Field(description="nearest the cluster's centre first")
    inferences: int = Field(description="inferences of all its texts")
    keywords: list[str]
    proposed_label: str
    nearest_label: str | None
    similarity: float | None


class ReviewResponse(BaseModel):
    model: str
    version: int | None = Field(description="the production version that clustered the texts")
    labels: list[str] = Field(description="the labels that version knows (others need "
                              "new_label when labelling)")
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    max_confidence: float
    scanned: int = Field(description="newest inferences of the window read (at most "
                         "``scan_limit``: older ones are not looked at)")
    scan_limit: int
    texts: int = Field(description="distinct texts in the queue (at most the limit asked)")
    inferences: int = Field(description="inferences of those texts")
    clusters: list[ReviewCluster] = Field(description="candidate new intents, largest first")
    unclustered: list[ReviewText] = Field(description="candidates like no other text")
    near_known: list[ReviewText] = Field(description="texts nearer a known label's examples "
                                         "than to the other texts: unsure answers between "
                                         "known labels (label them to correct the model), "
                                         "not new intents")


class ReviewLabelRequest(FeedbackRequest):
    """A label for inferences by id (a text's, a cluster's), stored as feedback on each."""

    inference_ids: list[str] = Field(min_length=1, max_length=MAX_REVIEW_TEXTS,
                                     examples=[["3f2a9c0d4e5b46a7b8c9d0e1f2a3b4c5"]])


class ReviewLabelResponse(BaseModel):
    label: str
    labelled: int = Field(description="inferences that now carry the label as feedback")
    not_found: list[str] = Field(description="ids of no inference of this model (or of a "
                                 "shadow's, which takes no feedback)")
