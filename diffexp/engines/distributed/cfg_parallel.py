"""CFG-parallel: each denoise step's conditional and unconditional branches on two rank groups at once.

The supported pipelines call the transformer once per branch, marking each call with
`transformer.cache_context("cond" | "uncond")`. `CFGParallelTransformer` stands in for `pipe.transformer` and
reads that mark: the cond group computes at the "cond" call, the uncond group at the "uncond" call, and the two
predictions are exchanged between the groups at the "uncond" call. The two computations overlap because the
uncond group returns at once from the "cond" call, with an empty tensor that the exchange later fills in place;
so only pipelines that leave the cond prediction untouched until after the "uncond" call qualify.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager

import torch
import torch.distributed as dist

from diffexp.errors import DiffexpError

# Pipelines verified (diffusers 0.42.1) to run each branch as its own transformer call and not to touch the cond
# prediction before the uncond call, with what switches their uncond call on: "true_cfg" needs true_cfg_scale > 1
# and a negative prompt, "guidance" needs guidance_scale > 1. (QwenImageEdit* slice the cond prediction in between.)
UNCOND_CALL_SWITCH = {
    "FluxPipeline": "true_cfg",
    "QwenImagePipeline": "true_cfg",
    "WanPipeline": "guidance",
    "WanImageToVideoPipeline": "guidance",
}


def check_runs_both_branches(pipe, kwargs: dict) -> None:
    """Refuse runs in which the pipeline would never make the uncond call the wrapper waits for."""
    name = type(pipe).__name__
    switch = UNCOND_CALL_SWITCH.get(name)
    if switch is None:
        raise DiffexpError(
            f"parallel.cfg_parallel=true: the in-process engine's CFG-parallel supports {', '.join(UNCOND_CALL_SWITCH)}; "
            f"{name} is not among them (use a sequence-parallel layout or engine=sglang)"
        )
    defaults = inspect.signature(pipe.__call__).parameters
    guidance = kwargs.get("guidance_scale", defaults["guidance_scale"].default)
    if switch == "guidance" and not guidance > 1:
        raise DiffexpError(
            f"parallel.cfg_parallel=true with model.sampling.guidance_scale={guidance}: {name} runs no unconditional "
            "branch unless guidance_scale > 1"
        )
    true_cfg = kwargs.get("true_cfg_scale", defaults["true_cfg_scale"].default) if switch == "true_cfg" else None
    if switch == "true_cfg" and not (true_cfg > 1 and kwargs.get("negative_prompt") is not None):
        raise DiffexpError(
            f"parallel.cfg_parallel=true: {name} runs an unconditional branch only with true CFG, i.e. "
            f"true_cfg_scale > 1 and a negative prompt (this run: true_cfg_scale={true_cfg}, "
            f"negative_prompt={kwargs.get('negative_prompt')!r}); set +model.call_kwargs.true_cfg_scale=4.0 and "
            "model.sampling.negative_prompt=..."
        )


class CFGParallelTransformer(torch.nn.Module):
    """Runs one CFG branch of `inner` on this rank's group and returns both branches' predictions, in call order."""

    def __init__(self, inner: torch.nn.Module, cfg_mesh):
        super().__init__()
        self.inner = inner
        self.group = cfg_mesh.get_group()
        self.computes = ("cond", "uncond")[cfg_mesh.get_local_rank()]
        self._branch: str | None = None
        # The cond prediction (cond group) or the empty tensor standing in for it (uncond group), until exchanged.
        self._pending: torch.Tensor | None = None

    def __getattr__(self, name: str):
        # The pipeline reads the transformer's config, dtype, hooks and the like: they are the inner model's.
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["inner"], name)

    @contextmanager
    def cache_context(self, name: str, **kwargs):
        with self.inner.cache_context(name, **kwargs):
            self._branch = name
            try:
                yield
            finally:
                self._branch = None

    def compile(self, *args, **kwargs) -> None:
        # Compile the model, not this wrapper: its branch bookkeeping and the exchange stay eager.
        self.inner.compile(*args, **kwargs)

    def forward(self, *args, **kwargs):
        return_dict = kwargs.get("return_dict", True)
        if self._branch == "cond" and self._pending is None:
            if self.computes == "cond":
                out = self.inner(*args, **kwargs)
                self._pending = out.sample if return_dict else out[0]
                return out
            latents = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
            self._pending = torch.empty(0, device=latents.device)
            return _as_output(self._pending, return_dict)
        if self._branch == "uncond" and self._pending is not None:
            pending, self._pending = self._pending, None
            mine = pending
            if self.computes == "uncond":
                out = self.inner(*args, **kwargs)
                mine = out.sample if return_dict else out[0]
            cond, uncond = _exchange(mine.contiguous(), self.group)
            if self.computes == "cond":
                return _as_output(uncond, return_dict)
            pending.data = cond  # the cond call's return value now holds the cond prediction
            return out
        raise DiffexpError(
            f"parallel.cfg_parallel=true: the pipeline called {type(self.inner).__name__} under cache context "
            f"{self._branch!r} {'after an unanswered cond call' if self._pending is not None else 'with no cond call before it'}; "
            "CFG-parallel needs one 'cond' then one 'uncond' call per step"
        )


def _exchange(prediction: torch.Tensor, group) -> tuple[torch.Tensor, torch.Tensor]:
    """All-gather over the two branch groups: (cond, uncond) on every rank."""
    gathered = [torch.empty_like(prediction) for _ in range(2)]
    dist.all_gather(gathered, prediction, group=group)
    return gathered[0], gathered[1]


def _as_output(prediction: torch.Tensor, return_dict: bool):
    if not return_dict:
        return (prediction,)
    from diffusers.models.modeling_outputs import Transformer2DModelOutput

    return Transformer2DModelOutput(sample=prediction)
