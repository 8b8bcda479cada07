"""A recorded run's sample of one figure, read from the store through a client it is given: no MLflow import here,
so that what only needs figures (the noise verdicts, an untracked tuning's winner) runs where MLflow is absent."""

from __future__ import annotations

from diffexp.results import repeat_series, replicate_series


def recorded_sample(client, run_id: str, metric: str = "denoise_s") -> list[float]:
    """A recorded run's sample of `metric`: its replicates' figures when it has several (they carry the
    between-process noise), else its repeats, else the one figure."""
    for series in (replicate_series(metric), repeat_series(metric)):
        values = [m.value for m in sorted(client.get_metric_history(run_id, series), key=lambda m: m.step)]
        if len(values) > 1:
            return values
    history = client.get_metric_history(run_id, metric)
    return [history[-1].value] if history else []
