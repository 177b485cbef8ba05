"""CPU time from ``/proc`` (Linux): of a process tree (:func:`cpu_seconds`), and where it
went during a span (:class:`CpuProbe`): a service worker's threads, the load generator, idle.

The probe reads before and after, so it costs nothing while the span runs::

    with CpuProbe(worker_pids) as probe:
        subprocess.run(["wrk", ...])
    probe.share  # {"event_loop_cores": ..., "other_threads_cores": ..., ...}

A worker's main thread runs its event loop; its other threads are the batcher, the model
runtime's pool and helper threads. Children this process waited for during the span (``wrk``)
count as the load generator.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from types import TracebackType

TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def stat_seconds(stat: Path) -> float:
    """User + system CPU seconds in a ``/proc/.../stat`` file (a process's or a thread's)."""
    text = stat.read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def thread_seconds(pid: int) -> dict[int, float]:
    """CPU seconds per thread of ``pid``; {} once it has exited."""
    seconds = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            seconds[int(task.name)] = stat_seconds(task / "stat")
        except OSError:  # the thread ended between listing and reading
            continue
    return seconds


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children (gunicorn workers), all threads."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += stat_seconds(Path(f"/proc/{current}/stat"))
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # it exited meanwhile
            continue
    return total


def machine_ticks() -> tuple[int, int]:
    """(idle + iowait, all) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[3] + values[4], sum(values)


def children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuProbe:
    def __init__(self, worker_pids: list[int]) -> None:
        self._pids = worker_pids
        self.share: dict[str, float] = {}

    def __enter__(self) -> CpuProbe:
        self._start = time.monotonic()
        self._threads = {pid: thread_seconds(pid) for pid in self._pids}
        self._machine = machine_ticks()
        self._children = children_seconds()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        wall = time.monotonic() - self._start
        loop = other = 0.0
        for pid, before in self._threads.items():
            for tid, seconds in thread_seconds(pid).items():
                used = seconds - before.get(tid, 0.0)
                if tid == pid:
                    loop += used
                else:
                    other += used
        idle, total = (after - before for after, before in zip(machine_ticks(), self._machine,
                                                               strict=True))
        self.share = {"event_loop_cores": round(loop / wall, 2),
                      "other_threads_cores": round(other / wall, 2),
                      "load_generator_cores": round((children_seconds() - self._children) / wall,
                                                    2),
                      "machine_idle": round(idle / total, 3) if total else 0.0}
