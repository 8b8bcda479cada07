"""What SGLang really ran: the server arguments it logged after its own adjustments, set against the request.

SGLang 0.5.23 rewrites what it is given before it logs `server_args: {…}` (ServerArgs.__post_init__):
`_adjust_parallelism` turns `--num-gpus 2` alone into CFG-parallel 2 for a CFG model (unless
`--performance-mode manual`) and fills sequence-parallel degrees; the auto-tuner of the default
`--performance-mode auto` picks offload / FSDP / compile from free memory (auto_tune.py); a pipeline
config may own a field of the same name and consume the flag before ServerArgs sees it
(JoyImageEditPipelineConfig.enable_torch_compile). The logged line is the settled state, so it is the
one record of what ran.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from diffexp import names
from diffexp.config.schema import Config
from diffexp.engines.sglang.flags import warmup_mode

_SERVER_ARGS = re.compile(r"server_args: (\{.*\})\s*$")
# Lines in which SGLang says it changed a setting on its own (server_args.py, auto_tune.py).
TUNING_MARKERS = (
    "Automatically enabled",
    "Automatically disabled",
    "Automatically set",
    "Applying performance_mode",
    "Applied GPU-resident performance defaults",
    "Applied low-memory component offload defaults",
    "performance_mode=speed enables",
)

# The server arguments that decide placement, layout and kernels: returned as `resolved.<key>` params.
RESOLVED_KEYS = (
    "backend",
    "performance_mode",
    "num_gpus",
    "tp_size",
    "sp_degree",
    "ulysses_degree",
    "ring_degree",
    "kv_gather_degree",
    "dp_size",
    "enable_cfg_parallel",
    "cfg_parallel_degree",
    "use_fsdp_inference",
    "hsdp_shard_dim",
    "dit_cpu_offload",
    "dit_layerwise_offload",
    "dit_offload_prefetch_size",
    "layerwise_offload_components",
    "cpu_offload_components",
    "component_residency",
    "text_encoder_cpu_offload",
    "image_encoder_cpu_offload",
    "vae_cpu_offload",
    "pin_cpu_memory",
    "enable_torch_compile",
    "enable_breakable_cuda_graph",
    "warmup_mode",
    "attention_backend",
    "log_level",
)


def server_args(line: str) -> Optional[dict]:
    """The settled ServerArgs of a `server_args: {…}` log line; None for any other line."""
    found = _SERVER_ARGS.search(line)
    if not found:
        return None
    try:
        data = json.loads(found.group(1))
    except ValueError:  # 0.5.23 falls back to the dataclass repr when sanitising fails
        return None
    return data if isinstance(data, dict) else None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def resolved_params(args: dict) -> dict[str, str]:
    """The placement / layout / kernel settings SGLang settled on, as strings (MLflow params)."""
    return {key: _text(args[key]) for key in RESOLVED_KEYS if key in args}


@dataclass(frozen=True)
class Requested:
    """One setting the config states, read against the server argument SGLang settled on."""

    what: str  # the config field, for the message
    key: str  # the server argument
    asked: Callable[[Config], Any]  # None: the config leaves it to SGLang


def _compile(c: Config) -> Optional[bool]:
    return bool(c.compile.enabled)


def _cfg_parallel(c: Config) -> Optional[bool]:
    if c.parallel.cfg_parallel_size is not None:
        return c.parallel.cfg_parallel_size > 1
    return True if c.parallel.cfg_parallel else None


REQUESTS: tuple[Requested, ...] = (
    Requested("compile.enabled", "enable_torch_compile", _compile),
    Requested("compile.warmup", "warmup_mode", warmup_mode),
    Requested("engine.performance_mode", "performance_mode", lambda c: c.engine.performance_mode),
    Requested("parallel.num_gpus", "num_gpus", lambda c: c.parallel.num_gpus),
    Requested("parallel.tp_degree", "tp_size", lambda c: c.parallel.tp_degree),
    Requested("parallel.ulysses_degree", "ulysses_degree", lambda c: c.parallel.ulysses_degree),
    Requested("parallel.ring_degree", "ring_degree", lambda c: c.parallel.ring_degree),
    Requested("parallel.cfg_parallel", "enable_cfg_parallel", _cfg_parallel),
    Requested("parallel.cfg_parallel_size", "cfg_parallel_degree", lambda c: c.parallel.cfg_parallel_size),
    Requested("offload.dit_cpu", "dit_cpu_offload", lambda c: c.offload.dit_cpu),
    Requested("offload.dit_layerwise", "dit_layerwise_offload", lambda c: c.offload.dit_layerwise),
    Requested("offload.prefetch_size", "dit_offload_prefetch_size", lambda c: c.offload.prefetch_size),
    Requested("offload.text_encoder_cpu", "text_encoder_cpu_offload", lambda c: c.offload.text_encoder_cpu),
    Requested("offload.image_encoder_cpu", "image_encoder_cpu_offload", lambda c: c.offload.image_encoder_cpu),
    Requested("offload.vae_cpu", "vae_cpu_offload", lambda c: c.offload.vae_cpu),
    Requested("offload.pin_cpu_memory", "pin_cpu_memory", lambda c: c.offload.pin_cpu_memory),
    Requested("attention.backend", "attention_backend", lambda c: c.attention.backend),
)

# Layout SGLang may choose on its own: a degree above 1 (or CFG-parallel on) that the config did not ask for.
UNASKED_LAYOUT = (
    ("parallel.cfg_parallel", "enable_cfg_parallel", _cfg_parallel),
    ("parallel.ulysses_degree", "ulysses_degree", lambda c: c.parallel.ulysses_degree),
    ("parallel.ring_degree", "ring_degree", lambda c: c.parallel.ring_degree),
    ("(sequence parallel)", "kv_gather_degree", lambda c: None),
    ("(FSDP)", "use_fsdp_inference", lambda c: None),
)


def _same(asked: Any, ran: Any) -> bool:
    if isinstance(asked, bool) or isinstance(ran, bool):
        return bool(asked) == bool(ran)
    try:
        return float(asked) == float(ran)
    except (TypeError, ValueError):
        return str(asked).lower() == str(ran).lower()


def _engaged(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    try:
        return float(value) > 1
    except (TypeError, ValueError):
        return False


def mismatches(cfg: Config, args: dict) -> list[str]:
    """Each place where what SGLang ran contradicts the request: a stated value it changed, or a parallel
    layout it chose that the config did not ask for. Empty when the run did what was asked."""
    out = []
    for req in REQUESTS:
        asked = req.asked(cfg)
        if asked is None or req.key not in args:
            continue
        ran = args[req.key]
        if ran is None and req.key == "attention_backend":
            continue  # chosen per platform after the line is logged; the log's backend line tells
        if not _same(asked, ran):
            out.append(f"{req.what}={_text(asked)} but SGLang ran {req.key}={_text(ran)}")
    for what, key, asked in UNASKED_LAYOUT:
        if asked(cfg) is None and _engaged(args.get(key)):
            out.append(f"{key}={_text(args[key])} chosen by SGLang, not asked for ({what} unset)")
    return out


# Tags a run gets from what SGLang settled on (names.RESOLVED_*).
TAG_MISMATCH, TAG_AUTO_TUNED, TAG_UNKNOWN = names.RESOLVED_MISMATCH, names.RESOLVED_AUTO_TUNED, names.RESOLVED_UNKNOWN


def tags(cfg: Config, args: Optional[dict]) -> dict[str, str]:
    """`resolved.mismatch` (what contradicts the request), `resolved.auto_tuned_baseline` (SGLang chose the
    placement: performance_mode other than manual), or `resolved.unknown` when the log had no server_args line."""
    if args is None:
        return {TAG_UNKNOWN: "no server_args line in the log: what SGLang ran is not known"}
    out = {}
    problems = mismatches(cfg, args)
    if problems:
        out[TAG_MISMATCH] = "; ".join(problems)[:5000]
    if str(args.get("performance_mode", "manual")) != "manual":
        out[TAG_AUTO_TUNED] = f"performance_mode={args.get('performance_mode')}"
    return out
