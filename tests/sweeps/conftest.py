"""Fixtures for sweep tests: one tiny_smoke sweep per session, a real `mlflow server` on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error

import pytest
from sweep_helpers import Sweep, free_port, get, run_sweep


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory) -> Sweep:
    """`tiny_smoke` once per session, into a SQLite store in a temp dir (cwd there too)."""
    root = tmp_path_factory.mktemp("tiny_smoke")
    return run_sweep(["+sweep=tiny_smoke"], root, f"sqlite:///{root / 'mlflow.db'}")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on loopback (SQLite backend, artifacts proxied to a temp dir)."""
    if shutil.which("mlflow") is None:
        pytest.fail("the `mlflow` CLI is not on PATH (it comes with the mlflow package)")
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'backend.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if get(f"{url}/health").strip() == b"OK":
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"mlflow server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, 15)  # the server and its workers: a process group we started
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()
