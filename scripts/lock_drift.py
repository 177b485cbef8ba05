"""List the packages of a Python environment that are not at the version a lock pins.

Run by scripts/setup with the environment's own interpreter:
    python scripts/lock_drift.py requirements/cpu.txt           # report (scripts/setup --latest)
    python scripts/lock_drift.py --strict requirements/cpu.txt  # exit 1 on any difference
polyhead itself and pip (which every venv starts with) are not in the lock.
"""

import argparse
import importlib.metadata
import re
import sys

UNLOCKED = {"polyhead", "pip"}


def normalise(name: str) -> str:
    """The package name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock_text: str) -> dict[str, str]:
    """Package name -> pinned version, from the `name==version` lines of a requirements lock."""
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)==(\S+)", lock_text, re.MULTILINE)
    return {normalise(name): version for name, version in pins}


def drift(locked: dict[str, str]) -> list[tuple[str, str, str]]:
    """(name, locked version or "(not locked)", installed version) for each installed package
    that differs from the lock, sorted by name."""
    installed = {normalise(dist.metadata["Name"]): dist.version
                 for dist in importlib.metadata.distributions()}
    return sorted((name, locked.get(name, "(not locked)"), version)
                  for name, version in installed.items()
                  if name not in UNLOCKED and locked.get(name) != version)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lock")
    parser.add_argument("--strict", action="store_true", help="exit 1 on any difference")
    args = parser.parse_args()
    with open(args.lock, encoding="utf-8") as file:
        moved = drift(locked_versions(file.read()))
    print(f"{len(moved)} installed packages differ from {args.lock}" + (":" if moved else ""))
    for name, before, after in moved:
        print(f"  {name} {before} -> {after}")
    return 1 if args.strict and moved else 0


if __name__ == "__main__":
    sys.exit(main())
