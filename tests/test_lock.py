"""The install locks in requirements/ (made by scripts/lock) cover pyproject.toml and agree."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import tomllib
from types import ModuleType

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from tests.conftest import ROOT, script_module

LOCKS = ("cpu", "cuda")
# What scripts/lock resolves for: these markers decide which requirements apply.
TARGET: dict[str, str] = {
    **{key: str(value) for key, value in default_environment().items()},
    "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
    "python_version": "3.11", "python_full_version": "3.11.7", "implementation_name": "cpython",
    "platform_python_implementation": "CPython"}


def pins(name: str) -> dict[str, tuple[str, list[str]]]:
    """Package -> (version, hashes) of requirements/<name>.txt."""
    text = (ROOT / "requirements" / f"{name}.txt").read_text()
    found: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9_.-]*)==(\S+)", block)
        if match:
            found[_normal(match[1])] = (match[2], re.findall(r"--hash=sha256:([0-9a-f]{64})",
                                                             block))
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements() -> list[Requirement]:
    """Every requirement of pyproject.toml: the base and every extra's, other than polyhead's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = project["dependencies"] + [r for extra in project["optional-dependencies"].values()
                                       for r in extra]
    return [r for r in map(Requirement, texts) if r.name != "polyhead"]


@pytest.mark.parametrize("lock", LOCKS)
def test_every_requirement_is_pinned_within_its_range(lock: str) -> None:
    pinned = pins(lock)
    for requirement in project_requirements():
        if requirement.marker and not requirement.marker.evaluate(TARGET):
            continue
        name = _normal(requirement.name)
        assert name in pinned, f"{name} is not in requirements/{lock}.txt: run scripts/lock"
        version = pinned[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock}.txt pins {name}=={version}, outside pyproject.toml's "
            f"{requirement}: run scripts/lock")


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_has_a_hash(lock: str) -> None:
    assert all(hashes for _, hashes in pins(lock).values())


def test_the_locks_differ_only_in_torch_and_what_its_cuda_build_needs() -> None:
    cpu, cuda = pins("cpu"), pins("cuda")
    assert cpu["torch"][0].endswith("+cpu")
    assert "+" not in cuda["torch"][0]
    assert cpu["torch"][0].split("+")[0] == cuda["torch"][0]
    for name in cpu.keys() & cuda.keys() - {"torch"}:
        assert cpu[name][0] == cuda[name][0], f"{name}: {cpu[name][0]} vs {cuda[name][0]}"
    assert cpu.keys() - cuda.keys() == set()
    assert all(re.match(r"(nvidia|cuda|triton)", name) for name in cuda.keys() - cpu.keys())


def test_the_installer_is_pinned_with_hashes() -> None:
    text = (ROOT / "requirements/uv.txt").read_text()
    assert re.search(r"^uv==\S+ \\\n(\s+--hash=sha256:[0-9a-f]{64}.*\n)+", text, re.MULTILINE)


@pytest.fixture(scope="module")
def lock_drift() -> ModuleType:
    return script_module("scripts/lock_drift.py")


def test_drift_lists_what_differs_from_the_lock(lock_drift: ModuleType) -> None:
    installed = {_normal(d.metadata["Name"]): d.version
                 for d in importlib.metadata.distributions()}
    locked = {name: version for name, version in installed.items() if name != "pytest"}
    locked["pytest"] = "0.0.1"  # an older pin
    locked["no-such-package"] = "1.0"  # locked, not installed: not a difference
    del locked["packaging"]  # installed, not locked
    moved = lock_drift.drift(locked)
    assert ("pytest", "0.0.1", installed["pytest"]) in moved
    assert ("packaging", "(not locked)", installed["packaging"]) in moved
    assert len(moved) == 2


def test_drift_reads_pins_from_a_lock(lock_drift: ModuleType) -> None:
    lock = (ROOT / "requirements/cpu.txt").read_text()
    assert lock_drift.locked_versions(lock) == {name: v for name, (v, _) in pins("cpu").items()}
