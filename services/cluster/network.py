"""Hosts on one Linux machine: a network namespace each, wired to one bridge by a veth pair.

Each host has its own address (``10.77.<net>.<n>``), its own loopback and its own view of
``/etc/hosts`` (``ip netns exec`` mounts ``/etc/netns/<namespace>/hosts`` over it), so names
such as ``classifier-pods`` resolve there to every replica's address, as a Kubernetes headless
Service's name does. The machine itself is ``.1`` on the bridge: the edge proxy listens there
and on loopback. What a fault needs: every process of a host (``pids``), and its link, which
``cut`` takes down (a partition: packets vanish, nothing answers) and ``heal`` brings back.
Needs root (``ip netns``, ``ip link``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

NETNS_ETC = Path("/etc/netns")


def ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    veth: str  # the bridge's end of its link, in the machine's own namespace

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this host."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def pids(self) -> list[int]:
        return [int(pid) for pid in ip("netns", "pids", self.namespace).split()]

    def cut(self) -> None:
        ip("link", "set", self.veth, "down")

    def heal(self) -> None:
        ip("link", "set", self.veth, "up")


class Network:
    """``tag`` keeps the names of one network apart from another's (at most 3 characters)."""

    def __init__(self, tag: str, net: int) -> None:
        self.tag, self.prefix = tag, f"10.77.{net}"
        self.bridge = f"ph{tag}br"
        self.gateway_address = f"{self.prefix}.1"
        self.hosts: dict[str, Host] = {}
        self.names: dict[str, list[str]] = {}  # name -> addresses, in every host's /etc/hosts

    def create(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway_address}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add_host(self, name: str, number: int) -> Host:
        host = Host(name, f"ph{self.tag}-{name}", f"{self.prefix}.{number}",
                    f"ph{self.tag}{name}"[:15])
        ip("netns", "add", host.namespace)
        ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns",
           host.namespace)
        ip("link", "set", host.veth, "master", self.bridge, "up")
        for args in (("addr", "add", f"{host.address}/24", "dev", "eth0"),
                     ("link", "set", "eth0", "up"), ("link", "set", "lo", "up"),
                     ("route", "add", "default", "via", self.gateway_address)):
            ip("-n", host.namespace, *args)
        self.hosts[name] = host
        self.write_names()
        return host

    def set_name(self, name: str, addresses: list[str]) -> None:
        """``name`` resolves to ``addresses`` in every host (re-read at each lookup)."""
        self.names[name] = addresses
        self.write_names()

    def write_names(self) -> None:
        lines = ["127.0.0.1 localhost", f"{self.gateway_address} edge"]
        lines += [f"{h.address} {h.name}" for h in self.hosts.values()]
        lines += [f"{a} {name}" for name, addresses in self.names.items() for a in addresses]
        for host in self.hosts.values():
            folder = NETNS_ETC / host.namespace
            folder.mkdir(parents=True, exist_ok=True)
            # Rewritten in place: a running `ip netns exec` keeps its bind mount of this file.
            with open(folder / "hosts", "w") as hosts:
                hosts.write("\n".join(lines) + "\n")

    def destroy(self) -> None:
        """Remove every namespace, link and hosts file of this network (its processes must
        be gone); what is already gone is skipped."""
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True)
            shutil.rmtree(NETNS_ETC / host.namespace, ignore_errors=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        self.hosts.clear()
