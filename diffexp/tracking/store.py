"""Which MLflow store a command uses, and making sure it is usable before anything expensive starts.

One rule for every writer and reader: the URI given (`tracking.uri`, `--tracking-uri`), else
$MLFLOW_TRACKING_URI, else a SQLite file under ./mlruns/ (no server, no set-up).
"""

from __future__ import annotations

import fcntl
import logging
import os
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from mlflow import MlflowClient

from diffexp import names
from diffexp.errors import DiffexpError

log = logging.getLogger(__name__)

ENV_URI = "MLFLOW_TRACKING_URI"
# Schemes MLflow's tracking stores accept (a plain path is a file store).
SCHEMES = ("sqlite", "http", "https", "file", "postgresql", "mysql", "mssql", "databricks")
REACHABLE_TIMEOUT_S = 5.0


def default_store_dir() -> Path:
    return Path.cwd() / "mlruns"


def resolve_uri(uri: Optional[str] = None) -> str:
    """`uri`, else $MLFLOW_TRACKING_URI, else sqlite:///./mlruns/mlflow.db (created on first use)."""
    chosen = uri or os.environ.get(ENV_URI) or None
    if chosen:
        return chosen
    root = default_store_dir()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def _scheme(uri: str) -> str:
    return (
        uri.split("://", 1)[0].split("+", 1)[0].lower()
        if "://" in uri
        else ("databricks" if uri == "databricks" else "file")
    )


def _sqlite_path(uri: str) -> Optional[Path]:
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def check_usable(uri: str, field: str = "tracking.uri") -> None:
    """Refuse, in seconds and naming `field`, a store that cannot work: unknown scheme, unwritable SQLite
    location, or a server that does not answer (instead of MLflow's minutes of retries then a traceback)."""
    scheme = _scheme(uri)
    if scheme not in SCHEMES:
        raise DiffexpError(f"{field}={uri!r}: unknown store scheme {scheme!r}; allowed: {', '.join(SCHEMES)}")
    db = _sqlite_path(uri)
    if db is not None:
        folder = db.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DiffexpError(f"{field}={uri!r}: cannot create the store's folder {folder}: {exc.strerror}") from exc
        if not os.access(folder, os.W_OK) or (db.exists() and not os.access(db, os.W_OK)):
            raise DiffexpError(f"{field}={uri!r}: {db if db.exists() else folder} is not writable")
    elif scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=REACHABLE_TIMEOUT_S) as reply:
                reply.read(64)
        except urllib.error.HTTPError:
            pass  # it answered: a server that has no /health page is still a server
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DiffexpError(
                f"{field}={uri!r}: no tracking server answers there within {REACHABLE_TIMEOUT_S:g} s ({reason}); "
                "start one (mlflow server) or use tracking=local"
            ) from exc


@contextmanager
def _first_use_lock(uri: str):
    """Processes opening a new SQLite store at once race MLflow's schema migration (`duplicate column name`):
    the first one creates and migrates it under an exclusive file lock while the others wait."""
    db = _sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.parent / f"{db.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def client_for(uri: Optional[str] = None) -> MlflowClient:
    """A client on the store `resolve_uri(uri)` names, its schema created / migrated once (under a lock)."""
    resolved = resolve_uri(uri)
    with _first_use_lock(resolved):
        client = MlflowClient(tracking_uri=resolved, registry_uri=resolved)
        client.search_experiments(max_results=1)  # opens the store: creates or migrates the schema
    return client


def experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment's id, created if needed, with artifacts beside a SQLite store and the kind MLflow's UI reads."""
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        if existing.tags.get(names.EXPERIMENT_KIND) is None:
            client.set_experiment_tag(existing.experiment_id, names.EXPERIMENT_KIND, names.EXPERIMENT_KIND_RUNS)
        return existing.experiment_id
    db = _sqlite_path(client.tracking_uri)
    # Keep artifacts next to the database rather than wherever the process happens to run.
    location = (db.parent / "artifacts").as_uri() if db is not None else None
    try:
        return client.create_experiment(
            name, artifact_location=location, tags={names.EXPERIMENT_KIND: names.EXPERIMENT_KIND_RUNS}
        )
    except Exception:  # created concurrently by another run
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def ui_hint(uri: str) -> str:
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    return f"mlflow ui --backend-store-uri {uri}  (then open http://127.0.0.1:5000)"
