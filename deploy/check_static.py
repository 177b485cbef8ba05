"""Static checks of docker-compose.yml and deploy/docker/*.Dockerfile, with no Docker engine.

    python deploy/check_static.py        # prints problems, exits 1 if any

Each ``check_*`` function returns a list of problems (empty = fine), so a test can assert on
them: load this file with ``importlib.util.spec_from_file_location`` (deploy/ is no package).
It catches what a reviewer would miss and what only fails at ``docker compose up`` time on a
real host: missing healthchecks, dependencies on unknown services, ``latest`` tags, root
users, COPY sources that are absent or excluded by .dockerignore. Needs only PyYAML.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
NEED_HEALTHCHECK = ("postgres", "redis", "embedder")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


# --- docker-compose.yml -----------------------------------------------------------------------

def check_compose(path: Path = ROOT / "docker-compose.yml") -> list[str]:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        return [f"{path.name}: cannot read: {exc}"]
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or not services:
        return [f"{path.name}: no services"]
    problems: list[str] = []
    volumes = set((doc.get("volumes") or {}).keys())
    for name, svc in services.items():
        where = f"{path.name}: service {name}"
        if not isinstance(svc, dict):
            problems.append(f"{where}: not a mapping")
            continue
        if "image" not in svc and "build" not in svc:
            problems.append(f"{where}: has neither image nor build")
        if "build" in svc:
            problems += _check_build(where, svc["build"], path.parent)
        problems += _check_depends_on(where, svc, services)
        for volume in svc.get("volumes") or []:
            source = _named_volume(volume)
            if source and source not in volumes:
                problems.append(f"{where}: named volume {source!r} not declared under volumes")
    for name in NEED_HEALTHCHECK:
        if name not in services:
            problems.append(f"{path.name}: service {name} is missing")
        elif not _has_healthcheck(services[name]):
            problems.append(f"{path.name}: service {name} has no healthcheck")
    return problems + _check_gpu_profile(path.name, services)


def _check_build(where: str, build: Any, base: Path) -> list[str]:
    context = build if isinstance(build, str) else (build or {}).get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    if not (base / context).is_dir():
        return [f"{where}: build context {context!r} is not a folder"]
    if not (base / context / dockerfile).is_file():
        return [f"{where}: dockerfile {dockerfile!r} not found in {context!r}"]
    return []


def _check_depends_on(where: str, svc: dict[str, Any], services: dict[str, Any]) -> list[str]:
    depends = svc.get("depends_on") or {}
    if isinstance(depends, list):
        depends = {name: {"condition": "service_started"} for name in depends}
    problems = []
    for target, spec in depends.items():
        condition = (spec or {}).get("condition", "service_started")
        if target not in services:
            problems.append(f"{where}: depends on unknown service {target!r}")
            continue
        if condition not in CONDITIONS:
            problems.append(f"{where}: unknown depends_on condition {condition!r}")
        if condition == "service_healthy" and not _has_healthcheck(services[target]):
            problems.append(f"{where}: waits for {target} healthy, but it has no healthcheck")
        if not svc.get("profiles") and services[target].get("profiles"):
            problems.append(f"{where}: always starts but depends on {target}, "
                            "which only runs under a profile")
    return problems


def _named_volume(volume: Any) -> str | None:
    """The named volume a service mount uses; None for bind mounts and anonymous volumes."""
    if isinstance(volume, str):
        source = volume.split(":", 1)[0] if ":" in volume else None
    elif isinstance(volume, dict) and volume.get("type", "volume") == "volume":
        source = volume.get("source")
    else:
        return None
    return source if source and not source.startswith((".", "/", "~", "$")) else None


def _has_healthcheck(svc: dict[str, Any]) -> bool:
    check = svc.get("healthcheck")
    return isinstance(check, dict) and bool(check.get("test")) and not check.get("disable")


def _check_gpu_profile(filename: str, services: dict[str, Any]) -> list[str]:
    gpu = {n: s for n, s in services.items() if "gpu" in (s.get("profiles") or [])}
    if not gpu:
        return [f"{filename}: no service under the gpu profile"]
    problems = []
    for name, svc in gpu.items():
        devices = (((svc.get("deploy") or {}).get("resources") or {})
                   .get("reservations") or {}).get("devices") or []
        if not any(d.get("driver") == "nvidia" and "gpu" in (d.get("capabilities") or [])
                   for d in devices):
            problems.append(f"{filename}: service {name} (gpu profile) reserves no NVIDIA GPU "
                            "(deploy.resources.reservations.devices: driver nvidia, "
                            "capabilities [gpu])")
    return problems


# --- Dockerfiles ------------------------------------------------------------------------------

def dockerfiles(root: Path = ROOT) -> list[Path]:
    return sorted((root / "deploy" / "docker").glob("*Dockerfile"))


def instructions(text: str) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    result: list[tuple[int, str, str]] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comments inside a continued instruction are dropped by Docker too
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        result.append((start, keyword.upper(), args.strip()))
        pending = ""
    return result


def check_dockerfile(path: Path, context: Path = ROOT) -> list[str]:
    try:
        steps = instructions(path.read_text())
    except OSError as exc:
        return [f"{path.name}: cannot read: {exc}"]
    problems: list[str] = []
    args: dict[str, str] = {}
    stages: list[str] = []
    final_user, healthcheck = None, False
    ignore = _dockerignore(context)
    for number, keyword, rest in steps:
        where = f"{path.name}:{number}"
        if keyword == "ARG" and not stages:
            name, has_default, default = rest.partition("=")
            if has_default:
                args[name.strip()] = default.strip().strip("\"'")
        elif keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            image = _expand(words[0], args) if words else ""
            if image not in stages and image != "scratch":
                problems += [f"{where}: {p}" for p in _image_problems(image)]
            stages.append(words[2] if len(words) >= 3 and words[1].upper() == "AS" else "")
            final_user, healthcheck = None, False  # both are per stage; the last one counts
        elif not stages:
            problems.append(f"{where}: {keyword} before the first FROM")
        elif keyword == "USER":
            final_user = rest.split()[0] if rest else ""
        elif keyword == "HEALTHCHECK":
            healthcheck = rest.split()[0].upper() != "NONE" if rest else False
        elif keyword in {"COPY", "ADD"}:
            problems += [f"{where}: {p}" for p in _copy_problems(keyword, rest, context, ignore)]
    if not stages:
        return [f"{path.name}: no FROM"] + problems
    if final_user is None:
        problems.append(f"{path.name}: final stage has no USER (it would run as root)")
    elif final_user.split(":")[0] in {"root", "0", ""}:
        problems.append(f"{path.name}: final stage runs as root (USER {final_user})")
    if not healthcheck:
        problems.append(f"{path.name}: final stage has no HEALTHCHECK")
    return problems


def _expand(word: str, args: dict[str, str]) -> str:
    """Replace ${NAME} / $NAME with the global ARG defaults, as docker build does."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), word)


def _image_problems(image: str) -> list[str]:
    if "$" in image:
        return [f"base image {image!r} has an ARG without a default"]
    if "@sha256:" in image:
        return []
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # no ':' after the last '/': no tag at all
        return [f"base image {image!r} has no tag (it means latest)"]
    if tag == "latest":
        return [f"base image {image!r} uses the latest tag"]
    return []


def _copy_problems(keyword: str, rest: str, context: Path, ignore: list[str]) -> list[str]:
    words = rest.split()
    if any(w.startswith("--from") for w in words) or rest.lstrip().startswith("["):
        return []  # from another stage or image; JSON form is not used here
    sources = [w for w in words if not w.startswith("--")][:-1]
    problems = []
    for source in sources:
        if keyword == "ADD" and re.match(r"https?://", source):
            continue
        matches = list(context.glob(source)) if any(c in source for c in "*?[") else (
            [context / source] if (context / source).exists() else [])
        if not matches:
            problems.append(f"{keyword} source {source!r} does not exist in the repository")
        elif all(_ignored(m.relative_to(context).as_posix(), ignore) for m in matches):
            problems.append(f"{keyword} source {source!r} is excluded by .dockerignore")
    return problems


def _dockerignore(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def _ignored(relpath: str, patterns: list[str]) -> bool:
    """Last matching pattern wins; a pattern also excludes everything under a matched folder."""
    parts = relpath.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").lstrip("/")
        alternatives = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(p, alt) for p in prefixes for alt in alternatives):
            ignored = not negate
    return ignored


# --- entry point ------------------------------------------------------------------------------

def check_all(root: Path = ROOT) -> list[str]:
    problems = check_compose(root / "docker-compose.yml")
    files = dockerfiles(root)
    if not files:
        problems.append("deploy/docker: no Dockerfiles")
    for path in files:
        problems += check_dockerfile(path, context=root)
    return problems


def main(argv: list[str] | None = None) -> int:
    root = Path(argv[0]).resolve() if argv else ROOT
    problems = check_all(root)
    for problem in problems:
        print(problem)
    checked = 1 + len(dockerfiles(root))
    print(f"check_static: {checked} files, {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
