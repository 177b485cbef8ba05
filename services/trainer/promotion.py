"""Whether a newly trained version goes live, and why or why not, in words for its job.

A version that cannot answer a label production answers is never promoted automatically,
whatever its F1: its F1 was measured on fewer classes, so the comparison says nothing about
the label it lost. A person may still promote it (``polyhead promote``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.contracts.training import Version
from shared.registry import PromotePolicy, classes_of, should_promote


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str

    def report(self) -> dict[str, object]:
        return {"promoted": self.promote, "reason": self.reason}


def decide(policy: PromotePolicy, f1: float, labels: Iterable[str], production: Version | None,
           tolerance: float = 0.0) -> Decision:
    """The decision for a version with CV weighted F1 ``f1`` that answers ``labels``."""
    if production is None:
        return (Decision(False, "not promoted: the promote policy is never") if policy == "never"
                else Decision(True, f"promoted: the first version (cv weighted F1 {f1:.4f})"))
    missing = sorted(set(classes_of(production.metrics)) - set(labels))
    if missing:
        return Decision(False, f"not promoted: labels {', '.join(missing)} of production version "
                               f"{production.version} are missing (promote it by hand if that "
                               "is intended)")
    versus = f"cv weighted F1 {f1:.4f} vs {_f1(production)} (v{production.version})"
    if should_promote(policy, f1, production.weighted_f1, tolerance):
        return Decision(True, f"promoted ({policy}): {versus}")
    why = "the promote policy is never" if policy == "never" else f"worse: {versus}"
    return Decision(False, f"not promoted: {why}")


def _f1(version: Version) -> str:
    return f"{version.weighted_f1:.4f}" if version.weighted_f1 is not None else "none"
