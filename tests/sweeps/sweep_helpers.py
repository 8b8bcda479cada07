"""Helpers for sweep tests: real `python -m diffexp -m` subprocesses, real MLflow stores and a real server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from diffexp.sweeps.handoff import SweepInfo


def run_diffexp(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "diffexp", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        print(proc.stdout[-5000:], proc.stderr[-5000:], sep="\n")
    return proc


@dataclass
class Sweep:
    uri: str
    sweep_dir: Path
    info: SweepInfo
    proc: subprocess.CompletedProcess


def run_sweep(args: list[str], cwd: Path, uri: str, returncode: int = 0) -> Sweep:
    """The sweep's exit status must be `returncode` (1 when a point failed)."""
    sweep_dir = cwd / "multirun" / "sweep"
    proc = run_diffexp(["-m", *args, f"tracking.uri={uri}", f"hydra.sweep.dir={sweep_dir}"], cwd)
    assert proc.returncode == returncode, proc.stderr[-3000:]
    info = SweepInfo.read(sweep_dir)
    assert info is not None, "the callback wrote no sweep_parent.json"
    return Sweep(uri, sweep_dir, info, proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def rest(url: str, path: str, body: dict | None = None) -> dict:
    """MLflow's REST API: GET with query parameters, or POST a JSON body."""
    if body is None:
        return json.loads(get(f"{url}{path}", timeout=30))
    request = urllib.request.Request(
        f"{url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
