"""What the benchmarks read of the processes they start, from ``/proc`` (Linux): CPU time
per process and thread, children, resident memory, the load average; and the load they can
add on purpose (busy loops, CPU pinning). Imported by the benchmarks as ``procstats`` (they
run as scripts from this folder).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["children", "cpu_sample", "cpu_use", "load_average", "pin", "rss_mib",
           "start_burners"]


def rss_mib(pid: int) -> float:
    """Resident set size (``VmRSS``) of ``pid`` in MiB (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def _cpu_s(stat: Path) -> float:
    """CPU seconds (user + system) of the process or thread whose ``/proc/.../stat`` this is."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):  # a process that just ended
            continue
    return kids


def cpu_sample(pid: int) -> dict[str, float]:
    """CPU seconds so far of the node (all threads), of each of its threads (``tid:N``), and
    of its child processes (the model process; the resource tracker is idle)."""
    try:
        sample = {"node": _cpu_s(Path(f"/proc/{pid}/stat"))}
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            try:
                sample[f"tid:{stat.parent.name}"] = _cpu_s(stat)
            except OSError:  # a thread that just ended
                continue
        model = 0.0
        for kid in children(pid):
            try:
                model += _cpu_s(Path(f"/proc/{kid}/stat"))
            except OSError:
                continue
    except OSError:  # the node is gone
        return {}
    sample["model process"] = model
    return sample


def cpu_use(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used between two :func:`cpu_sample` s: node, its busiest thread (the executor's
    dispatch loop or a callback thread), model process."""
    if not before or not after or seconds <= 0:
        return {}
    threads = [after[k] - before.get(k, 0.0) for k in after if k.startswith("tid:")]
    return {"node": (after["node"] - before["node"]) / seconds,
            "busiest node thread": max(threads, default=0.0) / seconds,
            "model process": (after["model process"] - before["model process"]) / seconds}


def load_average() -> str:
    """The load average as ``1/5/15 min`` text."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg()) + " (1/5/15 min)"



def _burn() -> None:
    while True:
        pass


def start_burners(n: int) -> list[Any]:
    """``n`` processes that each keep a CPU busy (pure Python loops): other users' work."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_burn, daemon=True, name=f"burner-{i}") for i in range(n)]
    for proc in procs:
        proc.start()
    return procs


def pin(cpus: int) -> str:
    """Pin this process (and so every process it starts) to ``cpus`` of its CPUs."""
    allowed = sorted(os.sched_getaffinity(0))
    if not 1 <= cpus <= len(allowed):
        raise SystemExit(f"--cpus must be 1..{len(allowed)}")
    os.sched_setaffinity(0, allowed[:cpus])
    return ",".join(str(c) for c in allowed[:cpus])
