"""measure.replicates=K: K fresh processes of the same config, one after the other, folded into one RunResult
(diffexp.measure.aggregate.fold_replicates). Works above the engine, so SGLang (one request per process) gets
the same statistics as the in-process engine.

Each child runs `python -m diffexp.replicates CONFIG_YAML` untracked in `<run_dir>/replicates/<i>/`, in its own
process group under the same supervision as `sglang generate` (timeout, Ctrl-C, SIGTERM: the group is emptied);
a child whose parent is killed outright dies with it (PDEATHSIG).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
from pathlib import Path

from omegaconf import OmegaConf

from diffexp import rundir
from diffexp.config.schema import Config
from diffexp.errors import DiffexpError, RunInterrupted
from diffexp.measure.aggregate import fold_replicates
from diffexp.results import RunResult
from diffexp.supervise import die_with_parent, parent_pid_env

log = logging.getLogger(__name__)

REPLICATES_DIR, CHILD_CONFIG, CHILD_RESULT, CHILD_LOG = (
    "replicates",
    rundir.CONFIG_YAML,
    rundir.METRICS_JSON,
    rundir.RUN_LOG,
)
SUMMARY_FILE = "replicates.json"


def child_config(cfg: Config, index: int, child_dir: Path) -> Config:
    """The same run as one untracked process: no nested replicates, no review (the parent reviews once)."""
    return dataclasses.replace(
        cfg,
        measure=dataclasses.replace(cfg.measure, replicates=1, replicate_index=index),
        tracking=dataclasses.replace(cfg.tracking, enabled=False),
        review=dataclasses.replace(cfg.review, reference="off"),
        output_dir=str(child_dir),
    )


def run_child(cfg: Config, child_dir: Path) -> RunResult:
    """One fresh process of `cfg` (already a child config); its RunResult."""
    from diffexp.supervise import run_streaming

    child_dir = Path(child_dir).resolve()
    child_dir.mkdir(parents=True, exist_ok=True)
    (child_dir / CHILD_RESULT).unlink(missing_ok=True)
    (child_dir / CHILD_CONFIG).write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **parent_pid_env()}
    command = [sys.executable, "-m", "diffexp.replicates", str(child_dir / CHILD_CONFIG)]
    code, tail = run_streaming(
        command, env, child_dir / "console.log", cfg.engine.timeout_s, echo=None, what="a replicate process"
    )
    if code != 0 or not (child_dir / CHILD_RESULT).is_file():
        raise DiffexpError(
            f"replicate {cfg.measure.replicate_index} exited with {code} (log: {child_dir / 'console.log'}):\n"
            + "\n".join(tail[-20:])
        )
    return RunResult.read_json(child_dir / CHILD_RESULT)


def run_replicates(cfg: Config, run_dir: Path) -> RunResult:
    run_dir = Path(run_dir)
    results = []
    for index in range(cfg.measure.replicates):
        child_dir = run_dir / REPLICATES_DIR / str(index)
        log.info("replicate %d/%d in %s", index + 1, cfg.measure.replicates, child_dir)
        result = run_child(child_config(cfg, index, child_dir), child_dir)
        log.info("replicate %d: denoise_s=%s", index, f"{result.denoise_s:.4f}" if result.denoise_s else "-")
        results.append(result)
    folded = fold_replicates(results, seed=cfg.measure.seed)
    (run_dir / SUMMARY_FILE).write_text(
        json.dumps({"replicates": folded.replicates, "spread": folded.spread}, indent=1)
    )
    folded.artifacts = {
        **{k: v for k, v in results[0].artifacts.items()},
        "replicates_summary": str(run_dir / SUMMARY_FILE),
        **{f"replicate{i}_log": str(run_dir / REPLICATES_DIR / str(i) / CHILD_LOG) for i in range(len(results))},
    }
    return folded


def run_engine(cfg: Config, engine, run_dir: Path) -> RunResult:
    """What diffexp.run calls: the engine once, or K replicates of it."""
    if cfg.measure.replicates > 1:
        return run_replicates(cfg, run_dir)
    return engine.run(cfg, run_dir)


def main(argv: list[str]) -> int:
    from diffexp.config.store import load_config_yaml
    from diffexp.engines import get_engine
    from diffexp.logs import quiet_libraries

    die_with_parent()
    config_yaml = Path(argv[0])
    run_dir = config_yaml.parent
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.FileHandler(run_dir / CHILD_LOG), logging.StreamHandler()],
    )
    quiet_libraries()

    def interrupted(signum, frame):  # the supervisor's SIGTERM: unwind, so the engine's own children go too
        raise RunInterrupted(f"received signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cfg = load_config_yaml(config_yaml)
    try:
        result = get_engine(cfg.engine.name).run(cfg, run_dir)
    except DiffexpError as exc:
        log.error("%s", exc)
        return 2
    result.tags["measure.replicate_index"] = str(cfg.measure.replicate_index)
    result.write_json(run_dir / CHILD_RESULT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
