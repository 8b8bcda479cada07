"""Runs left RUNNING by a process that died (SIGKILL, the OOM killer, a power cut): found by the pid and host
every run records, and ended FAILED with the reason."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

from mlflow import MlflowClient

from diffexp import names
from diffexp.tracking.queries import search_runs

log = logging.getLogger(__name__)


@dataclass
class Orphan:
    run_id: str
    host: str
    pid: str
    reason: str


def _same_process_alive(pid: str, started: str | None) -> bool:
    import psutil

    try:
        proc = psutil.Process(int(pid))
        # Killed but never reaped (its parent died too, and PID 1 in a container may not reap): dead all the same.
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        # A pid is reused by later processes: only the one that started the run at that time counts.
        return started is None or abs(proc.create_time() - float(started)) < 1.0
    except (psutil.NoSuchProcess, ValueError):
        return False
    except psutil.AccessDenied:
        return True


def find_orphans(client: MlflowClient, host: str | None = None) -> list[Orphan]:
    """RUNNING runs recorded on `host` (default: this machine) whose process is gone."""
    host = host or socket.gethostname()
    quoted = host.replace("'", "\\'")
    running = search_runs(client, f"attributes.status = 'RUNNING' and tags.`{names.HOST}` = '{quoted}'")
    orphans = []
    for run in running:
        pid = run.tags.get(names.PID)
        if pid is None:
            continue  # not written by diffexp's recorder: not ours to judge
        if not _same_process_alive(pid, run.tags.get(names.PID_START)):
            orphans.append(Orphan(run.run_id, host, pid, f"process {pid} on {host} is gone; the run never ended"))
    return orphans


def close_orphans(client: MlflowClient, host: str | None = None) -> list[Orphan]:
    """End every orphan FAILED with its reason (tag `error`); returns what was closed."""
    closed = find_orphans(client, host)
    for orphan in closed:
        client.set_tag(orphan.run_id, names.ERROR, f"reconciled: {orphan.reason}")
        client.set_terminated(orphan.run_id, status="FAILED")
        log.warning("run %s was left RUNNING by a dead process (%s): ended FAILED", orphan.run_id, orphan.reason)
    return closed
