"""`python -m diffexp model=… parallel=… …`: compose with Hydra, then hand over to diffexp.run."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from diffexp.config import CONF_DIR, register, to_config
from diffexp.errors import DiffexpError
from diffexp.logs import quiet_libraries

log = logging.getLogger("diffexp")

register()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _main(cfg: DictConfig) -> None:
    from diffexp.run import execute, print_summary

    quiet_libraries()
    try:
        outcome = execute(to_config(cfg), Path(HydraConfig.get().runtime.output_dir))
    except DiffexpError as exc:
        log.error("%s", exc)
        sys.exit(2)
    if outcome is not None:
        print_summary(outcome)
        if outcome.status != "FINISHED":
            sys.exit(1)


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
