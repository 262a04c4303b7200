"""CPU seconds of the processes a measured run spreads over, read from Linux's ``/proc``: the API
server's, and PostgreSQL's (its live backends, and what the postmaster reaped of those that
exited). None where there is no ``/proc``: the benchmark then prints no CPU split."""

from __future__ import annotations

import os
import resource
from pathlib import Path

PROC = Path("/proc")


def own_cpu() -> float:
    """This process's CPU seconds so far (user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _seconds(stat: str, children: bool) -> float:
    """utime + stime (and cutime + cstime) of a ``/proc/<pid>/stat`` line, in seconds."""
    fields = stat.rsplit(")", 1)[1].split()  # after the command's name, which may hold spaces
    ticks = [int(f) for f in fields[11:15]]  # utime, stime, cutime, cstime: fields 14-17 of proc(5)
    return sum(ticks if children else ticks[:2]) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float | None:
    """One process's own CPU seconds so far."""
    try:
        return _seconds((PROC / str(pid) / "stat").read_text(), children=False)
    except OSError:
        return None


def postgres_cpu() -> float | None:
    """CPU seconds of every ``postgres`` process of this machine, reaped backends included."""
    if not PROC.is_dir():
        return None
    total = 0.0
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked: its time is in the postmaster's reaped time
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")] == "postgres":
            total += _seconds(stat, children=True)
    return total


class CpuSplit:
    """CPU used by the API server and PostgreSQL between ``__init__`` and ``done``, a request."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.server, self.postgres = process_cpu(server_pid), postgres_cpu()

    def done(self, requests: int) -> dict[str, float]:
        server, postgres = process_cpu(self.pid), postgres_cpu()
        split: dict[str, float] = {}
        if self.server is not None and server is not None:
            split["server_cpu_us"] = (server - self.server) / max(1, requests) * 1e6
        if self.postgres is not None and postgres is not None:
            split["postgres_cpu_us"] = (postgres - self.postgres) / max(1, requests) * 1e6
        return split
