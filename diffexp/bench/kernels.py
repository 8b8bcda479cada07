"""`python -m diffexp.bench.kernels`: the kernel micro-benchmark (kernels/bench.py, conf/kernel_bench.yaml), logged.

Times every Triton kernel of kernels/ against eager, built-in and torch.compile contenders at DiT shapes, writes
results.json / results.md, and logs one MLflow run through diffexp's run writer (the one store rule:
`tracking_uri=`, else $MLFLOW_TRACKING_URI, else ./mlruns/mlflow.db). Override anything Hydra-style, e.g.
`ops=[rms_norm] shapes=[[1,4096,3072]] sweep=true log_mlflow=false`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

from kernels.bench import KernelBenchConfig, main_from_config

log = logging.getLogger(__name__)


def metric_key(timing: dict) -> str:
    impl = timing["impl"].replace("[", "_").replace("]", "").replace(",", "_")
    return f"{timing['kernel']}/{timing['shape']}/{timing['dtype']}/{impl}"


def log_results(results_json: Path, tracking_uri: Optional[str], experiment: str = "kernel_bench") -> Optional[str]:
    """One run from a results.json (and the files beside it): the environment and what was timed as params, each timing's
    µs per call and share of the copy bandwidth as metrics. None where MLflow is not importable (a GPU box)."""
    try:
        from diffexp.tracking.writer import RunRecorder
    except ImportError:
        log.warning("mlflow is not importable here: results stay in %s", results_json.parent)
        return None
    results = json.loads(results_json.read_text())
    env = results["env"]
    params = {k: str(v) for k, v in env.items()}
    metrics = {}
    for t in results["timings"]:
        metrics[f"{metric_key(t)}/us"] = t["median_us"]
        if t.get("pct_of_copy") is not None:
            metrics[f"{metric_key(t)}/pct_copy"] = t["pct_of_copy"]
    with RunRecorder(tracking_uri, experiment, f"kernel_bench {env['date']}", params, {"bench": "kernels"}) as rec:
        rec.log_metrics(metrics)
        for path in sorted(results_json.parent.glob("results.*")):
            rec.log_artifact(path)
        return rec.run_id


def run(cfg: KernelBenchConfig, default_out: Path) -> tuple[list, Optional[str]]:
    timings, _, files = main_from_config(cfg, default_out)
    run_id = log_results(files[0], cfg.tracking_uri, cfg.experiment) if cfg.log_mlflow else None
    if run_id:
        print(f"MLflow run {run_id}")
    return timings, run_id


def main() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    conf_dir = str(Path(__file__).resolve().parents[2] / "conf")

    @hydra.main(config_path=conf_dir, config_name="kernel_bench", version_base=None)
    def _entry(raw) -> None:
        cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(KernelBenchConfig), raw))
        run(cfg, Path(HydraConfig.get().runtime.output_dir))

    _entry()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
