"""Unknown keys under typed config groups: refused at composition, also when added with `+`.

Hydra lets `+model.foo=1` add a key to a typed node (it opens the node for the addition), and the
conversion to dataclasses then keeps it as a stray attribute nothing reads: a typo such as
`+model.sampling.num_inference_step=10` would run with the default and log nothing. Fields typed as
dicts (`model.call_kwargs`, `model.sglang_config`, `extra`, `tracking.tags`, `engine.env`) are open.
"""

from __future__ import annotations

import dataclasses

from omegaconf import DictConfig, OmegaConf


def unknown_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """One problem per key that no dataclass field declares, naming the allowed keys."""
    schema = OmegaConf.get_type(cfg)
    if not dataclasses.is_dataclass(schema):
        return []  # an open dict: any key is allowed
    allowed = [f.name for f in dataclasses.fields(schema)]
    problems = []
    for key in cfg.keys():
        path = f"{prefix}{key}"
        if key not in allowed:
            problems.append(
                f"{path}: unknown key; allowed keys under {prefix[:-1] or 'the root'}: {', '.join(allowed)}"
            )
            continue
        child = cfg._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            problems += unknown_keys(child, f"{path}.")
    return problems
