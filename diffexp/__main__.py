"""`python -m diffexp model=… parallel=… …`: compose with Hydra, then hand over to diffexp.run."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from diffexp.config import CONF_DIR, register, to_config
from diffexp.errors import DiffexpError, RunInterrupted
from diffexp.logs import quiet_libraries

log = logging.getLogger("diffexp")

register()  # also points Hydra at multirun_sweeps/


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _main(cfg: DictConfig) -> Optional[str]:
    from diffexp.run import execute, print_summary

    quiet_libraries()
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        # A failed point becomes a FAILED child run and the sweep goes on (diffexp.sweeps.job).
        from diffexp.sweeps.job import run_point

        return run_point(cfg)  # the status, counted by the sweep callback for the exit status
    try:
        outcome = execute(to_config(cfg), Path(HydraConfig.get().runtime.output_dir))
    except DiffexpError as exc:
        log.error("%s", exc)
        sys.exit(2)
    if outcome is not None:
        print_summary(outcome)
        if outcome.status != "FINISHED":
            sys.exit(1)
    return None


def main() -> None:
    from diffexp.sweeps.callback import abandon_open_sweeps, failed_points

    try:
        _main()
    except (KeyboardInterrupt, RunInterrupted):
        # The run is already recorded as KILLED; a sweep's parent is ended KILLED here (os._exit skips
        # atexit). Then leave now: a library thread that is not a daemon (or a wedged one after the
        # interrupt) must not keep an interrupted process alive.
        abandon_open_sweeps()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    if failed_points():
        log.error("%d sweep point(s) failed", failed_points())
        sys.exit(1)


if __name__ == "__main__":
    main()
