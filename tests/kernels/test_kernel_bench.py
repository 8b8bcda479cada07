"""The kernel benchmark end to end on CPU (python -m diffexp.bench.kernels): real Hydra composition of
conf/kernel_bench.yaml, a real MLflow store found by the one store rule."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from diffexp import names
from diffexp.bench.kernels import run
from diffexp.errors import ConfigError
from kernels.bench import KernelBenchConfig, validate

CONF = Path(__file__).resolve().parents[2] / "conf"


def _compose(*overrides: str) -> KernelBenchConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        raw = compose(config_name="kernel_bench", overrides=list(overrides))
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(KernelBenchConfig), raw))


def test_default_config_is_the_dit_shapes():
    cfg = _compose()
    validate(cfg)
    assert cfg.shapes == [[1, 4096, 3072], [1, 32760, 5120], [2, 4608, 3072]]
    assert cfg.dtypes == ["bfloat16"] and "compile" in cfg.baselines
    assert cfg.tracking_uri is None  # the one store rule, as every diffexp command


def test_bench_writes_results_and_logs_to_the_store_of_mlflow_tracking_uri(tmp_path, mlflow_uri, capsys, monkeypatch):
    from diffexp.tracking.store import client_for

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)  # honoured like every writer and reader
    cfg = _compose(
        "shapes=[[1,3,128]]", "baselines=[eager,builtin]", "copy_gib=0.001", "replays=3", "sweep=true", "sweep_configs=[[1,4]]",
        f"output_dir={tmp_path}",
    )  # fmt: skip
    timings, run_id = run(cfg, tmp_path / "unused")
    impls = {(t.kernel, t.impl) for t in timings}
    for kernel in cfg.ops:
        assert {
            (kernel, "triton"),
            (kernel, "eager"),
            (kernel, "builtin"),
            (kernel, "triton[m1,w4]"),
            (kernel, "copy"),
        } <= impls
    # The same-size copy moves the kernel's bytes: its GB/s is computed from them, not from its own buffers.
    copies = [t for t in timings if t.impl == "copy"]
    assert all(t.median_us > 0 and t.gbps > 0 for t in copies)
    assert all(t.max_rel_err is None or t.max_rel_err < 1e-2 for t in timings)

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["env"]["copy_gbps"] > 0 and len(results["timings"]) == len(timings)
    table = (tmp_path / "results.md").read_text()
    assert "| qk_norm_rope | 1x3x128 | bfloat16 |" in table and table in capsys.readouterr().out
    assert "% of same-size copy" in table

    client = client_for(mlflow_uri)
    (logged,) = client.search_runs([client.get_experiment_by_name("kernel_bench").experiment_id])
    assert logged.info.run_id == run_id and logged.info.status == "FINISHED"
    assert logged.data.metrics["rms_norm/1x3x128/bfloat16/triton/us"] > 0
    assert logged.data.params["shapes"] == "[[1, 3, 128]]" and names.PID in logged.data.tags
    assert {"results.md", "results.json"} <= {a.path for a in client.list_artifacts(run_id)}


def test_config_errors_name_the_field():
    cfg = _compose("ops=[rms_norm,softmax]", "dtypes=[int8]", "shapes=[[1,8,100]]")
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert "ops: unknown 'softmax'" in str(err.value)


def test_kernels_config_group(make_config):
    assert make_config().kernels.impl == "torch"
    assert make_config("kernels=triton").kernels.impl == "triton"
