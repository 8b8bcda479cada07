"""One rank of a parallel in-process run; started by launch.py as `python -m diffexp.engines.distributed.worker
RUN_DIR RANK WORLD_SIZE`, never by hand.

It joins the process group, shards the pipeline (sequence and/or CFG parallel), runs the single-process engine's
measured generation with a barrier before every clock reading, and rank 0 leaves the RunResult for the launcher.

Fault injection for tests: with DIFFEXP_TEST_FAIL_RANK=N in the environment, rank N dies (os._exit(3), no
cleanup, like an OOM kill) at its second transformer call, while the other ranks are mid-step.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from diffexp.config.schema import Config
from diffexp.config.store import load_config_yaml
from diffexp.engines import pipeline_setup
from diffexp.engines.distributed import cfg_parallel, context_parallel
from diffexp.engines.distributed.launch import LaunchFiles
from diffexp.engines.distributed.layout import Layout, build_mesh, layout_of
from diffexp.errors import DiffexpError
from diffexp.gpus import multicast_settings
from diffexp.logs import quiet_libraries
from diffexp.results import RunResult
from diffexp.supervise import die_with_parent

log = logging.getLogger("diffexp.rank")

FAIL_RANK_ENV = "DIFFEXP_TEST_FAIL_RANK"


def main(argv: list[str]) -> int:
    run_dir, rank, world_size = Path(argv[0]), int(argv[1]), int(argv[2])
    die_with_parent()  # a launcher killed outright takes its ranks
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format=f"%(asctime)s rank{rank} %(levelname)s %(name)s: %(message)s"
    )
    quiet_libraries()
    files = LaunchFiles(run_dir)
    cfg = load_config_yaml(files.config)
    try:
        run_rank(cfg, files, rank, world_size)
    except DiffexpError as exc:
        log.error("%s", exc)
        files.error(rank).write_text(str(exc))
        return 2
    except Exception:
        log.exception("rank %d failed", rank)
        return 1
    return 0


def run_rank(cfg: Config, files: LaunchFiles, rank: int, world_size: int) -> None:
    from diffexp.engines.diffusers.device import resolve_device
    from diffexp.engines.diffusers.generate import generate

    layout = layout_of(cfg.parallel)
    device = resolve_device(cfg)
    if device.type == "cuda":
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(
        backend,
        init_method=files.rendezvous.as_uri(),
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=cfg.engine.timeout_s),
        device_id=device if device.type == "cuda" else None,
    )
    try:
        mesh = build_mesh(layout, device.type)
        log.info("joined %s group of %d (%s) on %s", backend, world_size, layout.describe(), device)
        log.info("NVLink multicast off: %s", multicast_settings())
        if rank != 0:  # one trace, rank 0's, is the profile of a parallel run
            cfg = dataclasses.replace(cfg, profile=dataclasses.replace(cfg.profile, mode="off"))
        result = generate(
            cfg,
            files.run_dir,
            device,
            parallelize=lambda pipe: _parallelize(pipe, cfg, layout, mesh, rank),
            barrier=dist.barrier,
            save_outputs=rank == 0,
        )
        peaks = [None] * world_size
        dist.all_gather_object(peaks, result.peak_mem_gib_per_device)
        if rank == 0:
            _as_parallel_result(result, peaks, layout, backend).write_json(files.result)
    finally:
        dist.destroy_process_group()


def _parallelize(pipe, cfg: Config, layout: Layout, mesh, rank: int) -> None:
    """Shard every denoiser of the loaded pipeline: sequence parallel inside each CFG group, then CFG across them."""
    from diffexp.engines.diffusers.call import call_kwargs

    if os.environ.get(FAIL_RANK_ENV) == str(rank):
        _fail_at_second_call(getattr(pipe, pipeline_setup.denoisers(pipe)[0]), rank)
    if layout.cfg_degree > 1:
        cfg_parallel.check_runs_both_branches(pipe, call_kwargs(cfg, pipe))
    for name in pipeline_setup.denoisers(pipe):
        if layout.sequence_parallel:
            context_parallel.enable(getattr(pipe, name), layout, mesh, cfg.attention.backend)
        if layout.cfg_degree > 1:
            setattr(pipe, name, cfg_parallel.CFGParallelTransformer(getattr(pipe, name), mesh["cfg"]))


def _as_parallel_result(result: RunResult, peaks: list[dict], layout: Layout, backend: str) -> RunResult:
    per_rank = {f"rank{r}": max(p.values()) for r, p in enumerate(peaks) if p}
    return dataclasses.replace(
        result,
        peak_mem_gib=max(per_rank.values()) if per_rank else None,
        peak_mem_gib_per_device=per_rank,
        tags={
            **result.tags,
            "parallel.layout": layout.describe(),
            "parallel.backend": backend,
            "parallel.ranks": str(layout.world_size),
        },
    )


def _fail_at_second_call(transformer: torch.nn.Module, rank: int) -> None:
    calls = []

    def fail(*_):
        calls.append(1)
        if len(calls) == 2:
            log.error("%s=%d: rank %d exits now (test fault injection)", FAIL_RANK_ENV, rank, rank)
            logging.shutdown()
            os._exit(3)

    transformer.register_forward_pre_hook(fail)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # The rank's work and its files are done (the process group is destroyed in run_rank). Leave without the
    # interpreter's teardown: a C++ thread of the collectives' stack still joinable at exit makes the process
    # abort ("terminate called without an active exception", seen once on CI after a rank's generation had
    # finished), and the launcher would fail a run whose every rank did its work.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
