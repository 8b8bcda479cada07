"""profile=nsys for the in-process engine: the generation runs in a child process under `nsys profile`
(nsys traces a process it starts), then the report is broken down like the SGLang engine's.

    python -m diffexp.engines.nsys_child CONFIG_YAML RUN_DIR   # the child: one unprofiled generation
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from diffexp import rundir
from diffexp.config.schema import Config
from diffexp.errors import DiffexpError
from diffexp.results import RunResult

CHILD_CONFIG, CHILD_RESULT, CHILD_LOG = "nsys_child_config.yaml", "nsys_child_result.json", "nsys_child.log"


def run_under_nsys(cfg: Config, run_dir: Path, wrapper: Optional[list[str]] = None) -> RunResult:
    """Run the generation in a child under nsys (`wrapper` replaces the nsys prefix, e.g. [] in tests)."""
    from diffexp.engines.nsys import nsys_prefix
    from diffexp.engines.profiling import profile_outputs
    from diffexp.supervise import run_streaming

    report = run_dir / "profile_nsys"
    (run_dir / CHILD_CONFIG).write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    prefix = nsys_prefix(report, cfg.profile.nsys_delay_s, cfg.profile.nsys_duration_s) if wrapper is None else wrapper
    command = [*prefix, sys.executable, "-m", "diffexp.engines.nsys_child", str(run_dir / CHILD_CONFIG), str(run_dir)]
    # Its own process group, supervised like the SGLang engine's: a timeout or Ctrl-C ends nsys and the
    # generation under it, not nsys alone.
    returncode, tail = run_streaming(
        command,
        dict(os.environ),
        run_dir / CHILD_LOG,
        cfg.engine.timeout_s,
        echo=None,
        what="the nsys-profiled generation",
    )
    if returncode != 0 or not (run_dir / CHILD_RESULT).is_file():
        raise DiffexpError(f"the profiled generation exited with {returncode}:\n" + "\n".join(tail[-20:]))
    result = RunResult.read_json(run_dir / CHILD_RESULT)
    result.artifacts.update(
        {**profile_outputs(cfg, run_dir / rundir.TRACES, report), "nsys_child_log": str(run_dir / CHILD_LOG)}
    )
    result.profiled = True
    return result


def main(argv: list[str]) -> None:
    from diffexp.config.store import load_config_yaml
    from diffexp.engines.diffusers.device import resolve_device
    from diffexp.engines.diffusers.generate import generate

    config_yaml, run_dir = Path(argv[0]), Path(argv[1])
    cfg = load_config_yaml(config_yaml)
    cfg = replace(cfg, profile=replace(cfg.profile, mode="off"))  # nsys is the profiler here
    generate(cfg, run_dir, resolve_device(cfg)).write_json(run_dir / CHILD_RESULT)


if __name__ == "__main__":
    main(sys.argv[1:])
