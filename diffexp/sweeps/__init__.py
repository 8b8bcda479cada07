"""Named sweeps: one MLflow parent run per Hydra multirun, one child per point, a summary at the end."""
