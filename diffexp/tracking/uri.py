"""Which MLflow store a command uses, and whether it is usable, decided before anything expensive starts and
without importing MLflow (seconds matter: a run checks its store before the model loads).

One rule for every writer and reader: the URI given (`tracking.uri`, `--tracking-uri`), else
$MLFLOW_TRACKING_URI, else a SQLite file under ./mlruns/ (no server, no set-up).
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

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


def sqlite_path(uri: str) -> Optional[Path]:
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def check_usable(uri: str, field: str = "tracking.uri") -> None:
    """Refuse, in seconds and naming `field`, a store that cannot work: unknown scheme, unwritable SQLite
    location, or a server that does not answer (instead of MLflow's minutes of retries then a traceback)."""
    scheme = _scheme(uri)
    if scheme not in SCHEMES:
        raise DiffexpError(f"{field}={uri!r}: unknown store scheme {scheme!r}; allowed: {', '.join(SCHEMES)}")
    db = sqlite_path(uri)
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


def ui_hint(uri: str) -> str:
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    return f"mlflow ui --backend-store-uri {uri}  (then open http://127.0.0.1:5000)"
