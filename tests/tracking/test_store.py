"""Which store: one rule for writers and readers, a first use that several processes can share, and a store that
cannot work refused in seconds."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from diffexp.errors import DiffexpError
from diffexp.tracking.store import check_usable, client_for, resolve_uri
from diffexp.tracking.writer import RunRecorder

FIRST_USE = """
import sys
from diffexp.tracking.writer import RunRecorder
with RunRecorder(sys.argv[1], "race", sys.argv[2], {"p": "1"}, {}) as recorder:
    recorder.log_metrics({"denoise_s": 1.0})
"""


def test_four_processes_opening_a_new_store_at_once_all_log_their_run(tmp_path):
    """MLflow's schema migration raced ('duplicate column name: step') when processes created the store together."""
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    procs = [
        subprocess.Popen([sys.executable, "-c", FIRST_USE, uri, f"run{i}"], stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    runs = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("race").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["run0", "run1", "run2", "run3"]
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_the_environment_variable_names_the_store_when_no_uri_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.chdir(tmp_path)
    assert resolve_uri(None) == f"sqlite:///{tmp_path / 'env.db'}"
    assert resolve_uri("sqlite:///elsewhere.db") == "sqlite:///elsewhere.db"  # an explicit URI wins
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert resolve_uri(None) == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"


def _run_names(client: MlflowClient, experiment: str = "precedence") -> list[str]:
    found = client.get_experiment_by_name(experiment)
    return sorted(r.info.run_name for r in client.search_runs([found.experiment_id])) if found else []


def test_writers_and_readers_take_the_store_by_one_precedence(tmp_path, monkeypatch):
    """The URI given, then $MLFLOW_TRACKING_URI, then ./mlruns/mlflow.db: the run writer (a sweep's points use it)
    and the reading client (review, compare, reports) land on the same real store for each of the three."""
    monkeypatch.chdir(tmp_path)
    env_uri = f"sqlite:///{tmp_path / 'env' / 'mlflow.db'}"
    given_uri = f"sqlite:///{tmp_path / 'given' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_uri)
    for uri, name in ((None, "from-env"), (given_uri, "given")):
        with RunRecorder(uri, "precedence", name, {}, {}):
            pass
    assert client_for(None).tracking_uri == env_uri
    assert _run_names(client_for(None)) == ["from-env"]
    assert _run_names(client_for(given_uri)) == ["given"]  # the URI given wins over the variable
    assert _run_names(MlflowClient(env_uri)) == ["from-env"]  # read back by MLflow alone
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with RunRecorder(None, "precedence", "default", {}, {}):
        pass
    assert _run_names(client_for(None)) == ["default"]
    assert _run_names(MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")) == ["default"]


def test_an_unreachable_server_is_refused_in_seconds_naming_the_field():
    start = time.monotonic()
    with pytest.raises(DiffexpError, match=r"tracking.uri='http://127.0.0.1:9'.*no tracking server answers"):
        check_usable("http://127.0.0.1:9")  # port 9 (discard): nothing listens on loopback
    assert time.monotonic() - start < 10


def test_a_bad_scheme_and_an_unwritable_sqlite_path_are_refused(tmp_path):
    with pytest.raises(DiffexpError, match=r"unknown store scheme 'ftp'"):
        check_usable("ftp://host/store")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(DiffexpError, match=r"cannot create the store's folder"):
        check_usable(f"sqlite:///{blocker / 'sub' / 'mlflow.db'}")
