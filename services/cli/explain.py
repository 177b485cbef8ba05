"""``polyhead explain intents "where is my parcel"``: which words moved the answer.

Asks the gateway (``--gateway``, env ``GATEWAY_URL``) with an API key of the predict scope
(``--key``, env ``POLYHEAD_API_KEY``) and prints the label, its probability, the runner-up,
and each word with a signed bar: to the right it pushed towards the label, to the left away.
"""

from __future__ import annotations

import argparse
import json
from urllib.parse import quote

from services.cli.gateway_api import add_gateway_arguments, call
from shared.contracts.explain import ExplainResponse

BAR = 20  # characters of the longest bar, each side of the axis


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("explain", help="which words moved a model's answer for one text "
                       "(asks the gateway)")
    p.add_argument("model", help="model name, e.g. intents")
    p.add_argument("text")
    add_gateway_arguments(p, "predict")
    p.add_argument("--json", action="store_true", help="print the gateway's answer as JSON")
    p.set_defaults(func=explain, local=True)


def explain(args: argparse.Namespace) -> int:
    """Ask and print; 1 when the gateway refuses (its message), 2 when it is unreachable."""
    def show(content: bytes) -> str:
        answer = ExplainResponse.model_validate_json(content)
        return json.dumps(answer.model_dump(), indent=2) if args.json else render(answer)

    return call(args, "POST", f"/v1/models/{quote(args.model, safe='')}/explain", show,
                body={"text": args.text}, timeout_s=60)


def render(answer: ExplainResponse) -> str:
    """The answer for a terminal: a heading, then one line per word with a signed bar."""
    verdict = (f"abstains (out of scope); its best guess is {answer.explained_label}"
               if answer.abstained else answer.explained_label)
    lines = [f"{answer.model} v{answer.version}: {verdict} ({answer.probability:.3f})"]
    if answer.runner_up is not None:
        lines.append(f"runner-up: {answer.runner_up.label} ({answer.runner_up.probability:.3f})")
    lines.append(f"how much each word moved p({answer.explained_label}):")
    width = max(len(w.word) for w in answer.words)
    largest = max(abs(w.delta) for w in answer.words) or 1.0
    for w in answer.words:
        size = round(abs(w.delta) / largest * BAR)
        left, right = ("█" * size, "") if w.delta < 0 else ("", "█" * size)
        lines.append(f"  {w.word:<{width}} {left:>{BAR}}│{right:<{BAR}} {w.delta:+.3f}")
    return "\n".join(lines)
