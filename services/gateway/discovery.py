"""Replica discovery: the addresses behind a classifier URL's host name.

A Kubernetes headless Service's name, or a Compose service's name with ``--scale``, resolves to
one address per replica; a normal Service's name to one virtual IP (which hides the replicas:
deploy/k8s uses a headless one). Only ``http`` URLs are expanded: an ``https`` URL keeps its
name for the certificate check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit


async def replica_urls(source: str) -> list[str]:
    """``source`` once per address its host resolves to: the IPv4 ones where there are any (a
    dual-stack name lists every replica twice), else the IPv6 ones. Raises ``OSError`` when
    the name does not resolve."""
    parts = urlsplit(source)
    host = parts.hostname
    if parts.scheme != "http" or host is None or _is_address(host):
        return [source]
    port = parts.port or 80
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    ipv4 = [address for address in addresses if ":" not in address]
    return [urlunsplit((parts.scheme, _netloc(address, port), parts.path, "", ""))
            for address in ipv4 or addresses]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _netloc(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
