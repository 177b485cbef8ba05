"""``polyhead models``: what each version does now, in one word per meaning."""

from __future__ import annotations

from services.cli.versions import _role


def test_a_version_is_production_a_trial_or_its_status() -> None:
    model = {"production_version": 2, "candidate": {"version": 3, "mode": "canary",
                                                    "share": 0.1}}
    statuses = {1: "archived", 2: "production", 3: "new", 4: "new"}
    roles = {n: _role(model, {"version": n, "status": s}) for n, s in statuses.items()}
    assert roles == {1: "archived", 2: "production", 3: "canary 10%", 4: "new"}
    assert _role({"candidate": None}, {"version": 4, "status": "new"}) == "new"
