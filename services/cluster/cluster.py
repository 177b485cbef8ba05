"""polyhead as a small cluster on one Linux machine: the shape it is deployed in.

Hosts (network namespaces, :mod:`services.cluster.network`), each service under gunicorn with
its deploy/gunicorn config, as the images run it:

- ``db``: a PostgreSQL of the cluster's own, and Redis;
- ``emb1``, ``emb2``...: embedders, behind nginx on the machine's bridge address (a Service's
  role, deploy/nginx/embedder.conf), which the classifiers and the trainer call;
- ``cls1``, ``cls2``...: classifiers; the gateways find them by the name ``classifier-pods``,
  which resolves to each one's address (a headless Service's role);
- ``gw1``, ``gw2``...: gateways sharing one inference-log root, behind HAProxy on loopback
  (the Ingress's role, deploy/haproxy/gateway.cfg: health checks on /ready, membership changed
  without a reload, as ingress-nginx's dynamic endpoints);
- ``trainer``: the trainer's API and a worker.

Host-level faults are :mod:`services.cluster.faults`; this module starts, stops and restarts.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import sys
from pathlib import Path

from services.cluster.haproxy import HAProxy
from services.cluster.network import Host, Network
from services.cluster.postgres import Postgres
from services.cluster.processes import Program
from services.cluster.proxy import Nginx

ROOT = Path(__file__).resolve().parents[2]
PORTS = {"embedder": 8001, "classifier": 8002, "trainer": 8003, "gateway": 8000}
NUMBERS = {"db": 10, "emb": 20, "cls": 30, "gw": 40, "trainer": 50}


class Cluster:
    def __init__(self, work: Path, *, gateways: int = 2, classifiers: int = 2,
                 embedders: int = 2, edge_port: int = 8000, tag: str | None = None,
                 net: int = 77, extra_env: dict[str, str] | None = None) -> None:
        self.work = work
        self.counts = {"gw": gateways, "cls": classifiers, "emb": embedders}
        self.network = Network(tag or secrets.token_hex(1), net)
        self.edge_url = f"http://127.0.0.1:{edge_port}"
        self.programs: dict[str, Program] = {}
        self.token = secrets.token_hex(16)
        self.extra_env = extra_env or {}
        self.postgres: Postgres | None = None
        self.edge: HAProxy | None = None
        self.embedder_service: Nginx | None = None

    # Layout ----------------------------------------------------------------------------------

    def members(self, role: str) -> list[str]:
        return [f"{role}{i}" for i in range(1, self.counts[role] + 1)]

    def host(self, name: str) -> Host:
        return self.network.hosts[name]

    def url(self, name: str) -> str:
        """A service host's own URL, from the machine (through the bridge)."""
        role = "".join(c for c in name if not c.isdigit())
        service = {"emb": "embedder", "cls": "classifier", "gw": "gateway"}.get(role, role)
        return f"http://{self.host(name).address}:{PORTS[service]}"

    @property
    def database_url(self) -> str:
        return f"postgresql://polyhead@{self.host('db').address}:5432/postgres"

    def env(self) -> dict[str, str]:
        db = self.host("db").address
        bridge = self.network.gateway_address
        return {"POLYHEAD_ENV": "prod", "LOG_JSON": "false", "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "POLYHEAD_INTERNAL_TOKEN": self.token,
                "DATABASE_URL": self.database_url, "REDIS_URL": f"redis://{db}:6379/0",
                "ARTIFACT_STORE": str(self.work / "artifacts"),
                "EMBEDDER_URL": f"http://{bridge}:{PORTS['embedder']}",
                # No EMBEDDER_ONNX_DIR: the embedder's own cache beside the model, so a graph
                # an earlier run (or polyhead up) exported is reused, not exported again.
                "EMBEDDER_THREADS": "1",
                "EMBEDDER_CONCURRENT_BATCHES": "1",
                "CLASSIFIER_URLS": f"http://classifier-pods:{PORTS['classifier']}",
                "GATEWAY_LOG_DIR": str(self.work / "inference-log"),
                "GATEWAY_TRUSTED_PROXIES": bridge, "GATEWAY_ROUTES_REFRESH_S": "1",
                "GATEWAY_TRAINER_URL": f"http://trainer:{PORTS['trainer']}",
                "PYTHONPATH": str(ROOT)} | self.extra_env

    def _service(self, name: str, service: str) -> Program:
        host = self.host(name)
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        env = self.env() | {f"{service.upper()}_BIND": f"{host.address}:{PORTS[service]}",
                            f"{service.upper()}_WORKERS": "1"}
        return Program(name, host, [gunicorn, "-c", str(ROOT / f"deploy/gunicorn/{service}.py")],
                       env, self.work / "logs", ready_url=self.url(name))

    # Life ------------------------------------------------------------------------------------

    def start(self) -> Cluster:
        for folder in ("logs", "artifacts", "inference-log"):
            (self.work / folder).mkdir(parents=True, exist_ok=True)
        self.network.create()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.network.add_host("db", NUMBERS["db"])
        for role in ("emb", "cls", "gw"):
            for i, name in enumerate(self.members(role), start=1):
                self.network.add_host(name, NUMBERS[role] + i)
        self.network.add_host("trainer", NUMBERS["trainer"])
        self.network.set_name("classifier-pods", [self.host(n).address
                                                  for n in self.members("cls")])
        db = self.host("db")
        self.postgres = Postgres(db, self.work).start()
        self.programs["redis"] = Program("redis", db, [
            shutil.which("redis-server") or "redis-server", "--bind", db.address, "--port",
            "6379", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir",
            str(self.work)],
            {}, self.work / "logs").start()
        self.postgres.wait_ready()
        from shared.db import make_engine
        from shared.db.migrate import upgrade
        engine = make_engine(self.database_url)
        upgrade(engine)  # once, before the services race to
        engine.dispose()
        for name in self.members("emb"):  # one at a time: the first may export the ONNX graph
            self.programs[name] = self._service(name, "embedder").start()
        self.embedder_service = Nginx("embedder.conf", f"{self.network.gateway_address}:8001",
                                      self._upstreams("emb"), self.work / "nginx")
        self.embedder_service.start()
        for name in self.members("cls"):
            self.programs[name] = self._service(name, "classifier").start()
        for name in self.members("gw"):
            self.programs[name] = self._service(name, "gateway").start()
        self.edge = HAProxy(self.edge_url.removeprefix("http://"), {
            name: f"{self.host(name).address}:{PORTS['gateway']}"
            for name in self.members("gw")}, self.work / "haproxy").start()
        self.programs["trainer"] = self._service("trainer", "trainer").start()
        worker = str(Path(sys.executable).with_name("polyhead-trainer-worker"))
        self.programs["worker"] = Program("worker", self.host("trainer"), [worker], self.env(),
                                          self.work / "logs").start()

    def _upstreams(self, role: str) -> list[str]:
        return [f"{self.host(n).address}:{PORTS['embedder']}" for n in self.members(role)
                if n in self.programs and self.programs[n].alive]

    def stop(self) -> None:
        for proxy in (self.edge, self.embedder_service):
            if proxy is not None:
                proxy.stop()
        for program in reversed(list(self.programs.values())):
            program.signal(signal.SIGCONT)  # a frozen host's too
            program.stop(timeout_s=30)
        if self.postgres is not None:
            self.postgres.program.signal(signal.SIGCONT)
            self.postgres.stop()
        for host in self.network.hosts.values():  # anything a fault left behind
            for pid in host.pids():
                _kill(pid, signal.SIGKILL)
        self.network.destroy()


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
