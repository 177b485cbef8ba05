"""The deploy files, checked without a Docker engine: our own rules, Compose's parser, hadolint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT, script_module


def tool(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is missing: scripts/setup installs it with the test extras"
    return found


@pytest.fixture(scope="module")
def check_static() -> ModuleType:
    return script_module("deploy/check_static.py")


def test_our_rules_pass(check_static: ModuleType) -> None:
    assert check_static.check_all(ROOT) == []


@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]])
def test_compose_parses(profile: list[str]) -> None:
    result = subprocess.run([tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"),
                             *profile, "config", "-q"], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("dockerfile", sorted((ROOT / "deploy/docker").glob("*.Dockerfile")),
                         ids=lambda p: p.name)
def test_hadolint(dockerfile: Path) -> None:
    result = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
