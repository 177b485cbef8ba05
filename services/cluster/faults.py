"""What can happen to a host of the cluster, done for real, and how an operator restarts one.

Faults: every process of a host SIGKILLed (a lost machine), SIGSTOPped and SIGCONTed (a hung
one), its link down and up (a partition). Restarts are graceful and take the host out of
rotation first, as Kubernetes does (the endpoint removed, then SIGTERM): out of the Ingress's
upstreams for a gateway (HAProxy's drain state: no new request), the embedders' Service for an
embedder, the ``classifier-pods`` name for a classifier (after one routes refresh every gateway
has dropped it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from services.cluster.cluster import Cluster
from services.cluster.processes import Program

OUT_OF_ROTATION_S = 2.5  # > GATEWAY_ROUTES_REFRESH_S (1 s) + nginx's reload


def signal_host(cluster: Cluster, name: str, sig: int) -> int:
    """``sig`` to every process of host ``name``; how many there were."""
    pids = cluster.host(name).pids()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return len(pids)


def kill(cluster: Cluster, name: str) -> None:
    """The host is lost: every process SIGKILLed at once."""
    signal_host(cluster, name, signal.SIGKILL)
    for program in programs_of(cluster, name):
        program.reap()


def freeze(cluster: Cluster, name: str) -> None:
    signal_host(cluster, name, signal.SIGSTOP)


def thaw(cluster: Cluster, name: str) -> None:
    signal_host(cluster, name, signal.SIGCONT)


def start(cluster: Cluster, name: str) -> None:
    """Start the host's programs again (after a kill), and put it back in rotation once they
    are ready, as Kubernetes adds a pod to its endpoints (a lost host leaves them only when
    its probes fail: meanwhile its callers cope)."""
    _rotation(cluster, name, without=name)
    _start_programs(cluster, name)
    _rotation(cluster, name)


def restart(cluster: Cluster, name: str) -> None:
    """Out of rotation, SIGTERM (each service drains), started again, back in rotation."""
    take_out(cluster, name)
    for program in programs_of(cluster, name):
        program.stop()
    _start_programs(cluster, name)
    _rotation(cluster, name)


def _start_programs(cluster: Cluster, name: str) -> None:
    for program in programs_of(cluster, name):
        if not program.alive:
            program.start()


def take_out(cluster: Cluster, name: str) -> None:
    """Out of rotation, and long enough for every caller to notice."""
    _rotation(cluster, name, without=name)
    time.sleep(OUT_OF_ROTATION_S)


def rolling_restart(cluster: Cluster, role: str) -> None:
    """Each member of ``role`` (``gw``, ``cls``, ``emb``, or ``trainer``) in turn."""
    for name in cluster.members(role) if role != "trainer" else ["trainer"]:
        restart(cluster, name)


def programs_of(cluster: Cluster, name: str) -> list[Program]:
    return [p for p in cluster.programs.values() if p.host.name == name]


def _rotation(cluster: Cluster, name: str, without: str | None = None) -> None:
    """Every live member of ``name``'s role in rotation but ``without``."""
    role = "".join(c for c in name if not c.isdigit())
    live = [n for n in cluster.members(role) if n != without and cluster.programs[n].alive] \
        if role in ("gw", "cls", "emb") else []
    addresses = [cluster.host(n).address for n in live]
    if role == "gw" and cluster.edge is not None:
        for member in cluster.members("gw"):
            cluster.edge.set_state(member, "drain" if member == without else "ready")
        for member in live:  # as Kubernetes waits for a new pod's readiness
            cluster.edge.wait_up(member)
    elif role == "emb" and cluster.embedder_service is not None:
        cluster.embedder_service.set_upstreams([f"{a}:8001" for a in addresses])
    elif role == "cls":
        cluster.network.set_name("classifier-pods", addresses)
