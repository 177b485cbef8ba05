"""``scripts/cluster``: polyhead as a small cluster on this Linux machine (root needed).

    scripts/cluster up       # 2 gateways behind nginx, 2 classifiers, 2 embedders, a trainer
                             # and its worker, PostgreSQL and Redis: one network namespace each
    scripts/cluster clean    # remove what a run killed before its own clean-up left behind

``up`` prints the URL, API keys and how to break a host, trains the demo head, and stops
everything on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from services.cluster.cluster import Cluster
from services.cluster.network import NETNS_ETC


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the cluster; Ctrl-C stops it")
    up.add_argument("--gateways", type=int, default=2)
    up.add_argument("--classifiers", type=int, default=2)
    up.add_argument("--embedders", type=int, default=2)
    up.add_argument("--port", type=int, default=8000, help="the edge proxy's, on loopback")
    up.add_argument("--no-demo", action="store_true", help="do not train the demo head")
    up.add_argument("--demo-per-label", type=int, default=30)
    up.add_argument("--demo-labels", type=int, default=150)
    commands.add_parser("clean", help="remove leftover namespaces, links and hosts files")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("scripts/cluster: network namespaces need root", file=sys.stderr)
        return 2
    return _up(args) if args.command == "up" else _clean()


def _up(args: argparse.Namespace) -> int:
    from services.cli.demo import train_demo
    from services.gateway.auth import KeyStore
    from shared.db import make_engine, session_factory

    work = Path(tempfile.mkdtemp(prefix="polyhead-cluster-"))
    cluster = Cluster(work, gateways=args.gateways, classifiers=args.classifiers,
                      embedders=args.embedders, edge_port=args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"cluster: starting in {work} (logs in {work / 'logs'})", file=sys.stderr)
    try:
        cluster.start()
        engine = make_engine(cluster.database_url)
        keys = KeyStore(session_factory(engine))
        predict, admin = keys.create("cluster", ["predict"]), keys.create("ops", ["admin"])
        engine.dispose()
        os.environ["POLYHEAD_INTERNAL_TOKEN"] = cluster.token
        if not args.no_demo:
            train_demo(cluster.url("trainer"), cluster.edge_url, predict, args)
        hosts = ", ".join(f"{h.name} {h.address}" for h in cluster.network.hosts.values())
        print(f"polyhead cluster at {cluster.edge_url} (HAProxy in front of the gateways)\n"
              f"  predict key: {predict}\n  admin key:   {admin}\n  hosts: {hosts}\n"
              f"  try: curl -s {cluster.edge_url}/v1/models/clinc-intents/predict "
              f"-H 'Authorization: Bearer {predict}' -H 'content-type: application/json' "
              "-d '{\"text\": \"what is my balance\"}'\n"
              f"  break a host: ip netns pids {cluster.host('gw1').namespace} | xargs kill -9; "
              f"ip link set {cluster.host('cls1').veth} down\n  Ctrl-C stops everything",
              file=sys.stderr)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        print("cluster: stopping", file=sys.stderr)
        cluster.stop()
    return 0


def _clean() -> int:
    """Namespaces named ph<tag>-<host>, their links and /etc/netns folders, bridges ph<tag>br."""
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in namespaces.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith("ph") and "-" in name:
            for pid in subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                                      text=True).stdout.split():
                os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            subprocess.run(["rm", "-rf", str(NETNS_ETC / name)])
    links = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True,
                           text=True).stdout
    for line in links.splitlines():
        bridge = line.split(":")[1].strip()
        if bridge.startswith("ph") and bridge.endswith("br"):
            subprocess.run(["ip", "link", "del", bridge], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
