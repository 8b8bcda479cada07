"""What the in-process engine can run, in ConfigError's "field=value: what is allowed" form (imports no torch)."""

from __future__ import annotations

from diffexp.config.schema import Config

# The attention backends the in-process engine supports, as diffusers' attention-dispatcher names.
ATTENTION_BACKENDS = {"torch_sdpa": "native", "fa": "flash", "fa3": "_flash_3", "sage_attn": "sage"}


def problems(cfg: Config) -> list[str]:
    out: list[str] = []
    backend = cfg.attention.backend
    if backend is not None and backend not in ATTENTION_BACKENDS:
        out.append(
            f"attention.backend={backend!r}: engine diffusers supports {', '.join(ATTENTION_BACKENDS)}; "
            "sparse/video backends need engine=sglang"
        )
    if cfg.model.weights == "pretrained" and cfg.model.pipeline is None:
        out.append(
            f"model.pipeline=None: engine diffusers needs the diffusers pipeline class for model {cfg.model.name!r}"
        )
    if (cfg.parallel.cfg_parallel_size or 1) > 2:
        out.append(
            f"parallel.cfg_parallel_size={cfg.parallel.cfg_parallel_size}: the in-process engine splits the two "
            "CFG branches (conditional, unconditional) over 2 GPU groups; allowed: 1 or 2 (SGLang runs larger "
            "sizes, for models with more guidance branches: engine=sglang)"
        )
    if cfg.profile.mode == "nsys" and cfg.parallel.num_gpus > 1:
        out.append(
            f"profile.mode=nsys with parallel.num_gpus={cfg.parallel.num_gpus}: the in-process engine runs nsys "
            "around single-GPU runs only; use profile=torch (a trace per rank) or engine=sglang"
        )
    return out
