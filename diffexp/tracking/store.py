"""MLflow clients on the store the one rule names (diffexp/tracking/uri.py), the store created and migrated once
under a lock, and experiments as diffexp creates them."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from typing import Optional

from mlflow import MlflowClient

from diffexp import names
from diffexp.tracking.uri import (  # noqa: F401  (the rule's names, for callers that also need a client)
    ENV_URI,
    check_usable,
    resolve_uri,
    sqlite_path,
    ui_hint,
)


@contextmanager
def _first_use_lock(uri: str):
    """Processes opening a new SQLite store at once race MLflow's schema migration (`duplicate column name`):
    the first one creates and migrates it under an exclusive file lock while the others wait."""
    db = sqlite_path(uri)
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
    db = sqlite_path(client.tracking_uri)
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
