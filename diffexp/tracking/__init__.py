"""The one package that writes and reads MLflow: which store (`store`), the run writer (`writer`), the
read side (`queries`), the names runs carry (`names`), and reconciling runs whose process died (`reconcile`).

Importing this package imports no MLflow.
"""

import os

# MLflow's telemetry thread raced run creation (a KeyError on its session id): no telemetry from our runs.
# Set before any module of this package imports MLflow, which reads it then.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
