"""A review.reference that cannot be resolved refuses the run before it starts (no run created, exit 2)."""

from __future__ import annotations

import pytest

from diffexp.errors import ConfigError
from diffexp.run import execute
from tests.conftest import run_cli


@pytest.mark.parametrize(
    "reference, says",
    [
        ("garbage", "not an MLflow run id"),
        ("0123456789abcdef0123456789abcdef", "not found"),
        ("latest:tiny_flux", "no FINISHED, valid, lossless run"),
        ("sweep:bogus", "allowed are sweep"),
        ("sweep", "not part of a sweep"),
    ],
)
def test_bad_reference_is_refused_before_any_run(make_config, mlflow_client, tmp_path, reference, says):
    cfg = make_config(f"review.reference={reference}")
    with pytest.raises(ConfigError) as err:
        execute(cfg, tmp_path / "run")
    assert f"review.reference={reference!r}" in str(err.value) or f"review.reference={reference}" in str(err.value)
    assert says in str(err.value)
    assert not (tmp_path / "run").exists()  # nothing ran
    assert not [r for e in mlflow_client.search_experiments() for r in mlflow_client.search_runs([e.experiment_id])]


def test_cli_exits_2_on_a_bad_reference(tmp_path):
    proc = run_cli(
        ["diffexp", "review.reference=garbage", f"tracking.uri=sqlite:///{tmp_path / 'm.db'}"], tmp_path, timeout=120
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "review.reference='garbage'" in proc.stdout + proc.stderr
