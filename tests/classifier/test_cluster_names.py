"""A cluster's distinctive words leave stop words out; its proposed name reads as said."""

from __future__ import annotations

from services.classifier.cluster_names import keywords, proposed_label


def test_keywords_of_only_stop_words_are_none() -> None:
    assert keywords(["the a an", "and or"]) == [[], []]
    assert keywords(["set an alarm", "alarm tomorrow", "the weather"], top=1) == [
        ["set"], ["tomorrow"], ["weather"]]


def test_a_proposed_label_is_two_distinctive_words_in_the_order_texts_say_them() -> None:
    texts = ["what is my credit score", "tell me my credit score please"]
    assert proposed_label(["score", "credit", "tell"], texts) == "credit_score"
    assert proposed_label(["alarm"], ["set an alarm"]) == "alarm"
    assert proposed_label([], ["the a an"]) == "unnamed"
