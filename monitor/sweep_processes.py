"""The sweep's worker processes as processes (monitor/sweep_pool.py): whether one has
ended, killing one, stopping them all within a bound. ProcessPoolExecutor has no public
handle on its processes, so these read its `_processes`."""
from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any


def processes_of(worker: ProcessPoolExecutor) -> list[Any]:
    return list((getattr(worker, "_processes", None) or {}).values())  # no public handle on them


def exited(worker: ProcessPoolExecutor) -> bool:
    """Whether the worker's process has ended or is ending: its sentinel is ready (read,
    not reaped, so the executor's own thread still sees it), or its main thread is already
    a zombie (killed, with a thread still unwinding: the sentinel is ready only when the
    last one is gone, after the chunk would have been given to it)."""
    processes = processes_of(worker)
    sentinels = []
    for p in processes:
        with contextlib.suppress(ValueError):  # a closed Process
            sentinels.append(p.sentinel)
    if sentinels and multiprocessing.connection.wait(sentinels, timeout=0):
        return True
    return any(proc_state(p.pid) in ("Z", "X") for p in processes if p.pid)


def proc_state(pid: int) -> str | None:
    """The process's state letter from /proc (None elsewhere or once it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return None


def kill_worker(worker: ProcessPoolExecutor) -> None:
    processes = processes_of(worker)
    for p in processes:
        with contextlib.suppress(Exception):
            p.kill()
    worker.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        with contextlib.suppress(Exception):
            p.join(5)


def stop_within(workers: list[ProcessPoolExecutor], timeout: float) -> int:
    """Let each worker finish its chunks and exit, for at most `timeout` seconds in all, then
    kill the rest: how many of those were still in a chunk (one between its last result and
    its exit, under load seconds of clean-up, loses nothing when killed)."""
    deadline = time.monotonic() + timeout
    processes = [(w, p) for w in workers for p in processes_of(w)]  # the executor forgets them at shutdown
    for worker in workers:
        worker.shutdown(wait=False)
    busy = 0
    for worker, p in processes:
        p.join(max(deadline - time.monotonic(), 0.0))
        if p.is_alive():
            busy += bool(getattr(worker, "_pending_work_items", None))  # chunks given, no result yet
            with contextlib.suppress(Exception):
                p.kill()
                p.join(5)
    return busy
