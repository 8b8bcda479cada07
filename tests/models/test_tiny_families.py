"""Every tiny family end to end through diffexp.run into a real MLflow store, as a user runs it.

Per family, three runs share one build: `a` (seed 42), `b` (seed 42, reviewed against `a`) and `c` (seed 7).
They show the run is logged with its timings and outputs, that a seed fixes the output, and that the
correctness review passes a run against a same-seed reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from diffexp.run import execute
from tests.conftest import artifact_paths

pytestmark = pytest.mark.slow

# Family → the output one run writes and its shape (frames, height, width, RGB).
FAMILIES = {
    "tiny_qwen_image": ("image_000.png", (64, 64, 3)),
    "tiny_qwen_image_edit": ("image_000.png", (64, 64, 3)),
    "tiny_flux2": ("image_000.png", (64, 64, 3)),
    "tiny_zimage": ("image_000.png", (64, 64, 3)),
    "tiny_wan22": ("video_000.frames.npz", (9, 32, 32, 3)),
    "tiny_wan22_ti2v": ("video_000.frames.npz", (9, 64, 64, 3)),
    "tiny_ltx2": ("video_000.frames.npz", (9, 64, 64, 3)),
}
TIMINGS = ("denoise_s", "denoise_step_ms", "e2e_s")
STEPS = 4  # every tiny model samples 4 steps


def output_of(outcome, name: str) -> np.ndarray:
    [path] = [p for p in outcome.result.outputs if p.endswith(name)]
    return np.load(path)["frames"] if name.endswith(".npz") else np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One MLflow store for every family (each model is its own experiment): it is created and migrated once."""
    root = tmp_path_factory.mktemp("tiny_families")
    return root, f"sqlite:///{root / 'mlflow.db'}"


def input_image(root) -> str:
    """The edit family's input picture (its recipe's cat.png stands outside the repo)."""
    path = root / "input.png"
    if not path.exists():
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 80, 3), dtype=np.uint8)).save(path)
    return str(path)


def run_model(store, model: str, name: str, *overrides: str):
    from diffexp.config import compose, to_config

    root, uri = store
    out = root / model / name
    if model == "tiny_qwen_image_edit":
        overrides = (f"model.sampling.image_path={input_image(root)}", *overrides)
    cfg = to_config(
        compose([f"model={model}", "engine.device=cpu", *overrides, f"tracking.uri={uri}", f"output_dir={out}"])
    )
    return execute(cfg, out)


@pytest.fixture(scope="module")
def runs_of(store):
    """model → its three runs {a, b, c}, made once per module whichever test asks first."""
    made: dict[str, dict] = {}

    def get(model: str) -> dict:
        if model not in made:
            a = run_model(store, model, "a")
            b = run_model(store, model, "b", f"review.reference={a.run_id}")
            made[model] = {"a": a, "b": b, "c": run_model(store, model, "c", "model.sampling.seed=7")}
        return made[model]

    return get


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request, store, runs_of):
    """(model name, store URI, {run: Outcome}): the three runs of one family."""
    return request.param, store[1], runs_of(request.param)


def test_run_finishes_with_timings_and_logged_outputs(family):
    from mlflow import MlflowClient

    model, uri, runs = family
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(runs["a"].run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.name"] == model
    metrics = run.data.metrics
    for key in TIMINGS:
        assert metrics[key] > 0, key
    assert metrics["denoise_step_ms"] / 1e3 < metrics["denoise_s"] < metrics["e2e_s"]
    assert len(client.get_metric_history(run.info.run_id, "denoise_step_ms_series")) == STEPS
    name, shape = FAMILIES[model]
    assert f"outputs/{name}" in artifact_paths(client, run.info.run_id)
    output = output_of(runs["a"], name)
    assert output.shape == shape and output.dtype == np.uint8
    assert output.std() > 0  # a decoded picture, not a constant


def test_same_seed_same_output_other_seed_other_output(family):
    model, _, runs = family
    name = FAMILIES[model][0]
    a, b, c = (output_of(runs[k], name) for k in "abc")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_review_against_the_first_run_passes(family):
    from mlflow import MlflowClient

    from diffexp.review import PASS, verdict_of

    _, uri, runs = family
    assert runs["b"].status == "FINISHED"
    assert verdict_of(MlflowClient(tracking_uri=uri).get_run(runs["b"].run_id)) == PASS


def test_wan22_runs_both_experts_within_four_steps():
    """The boundary ratio splits the steps: the high-noise expert runs first, the low-noise one after."""
    from diffexp.config import compose, to_config
    from diffexp.engines.diffusers.call import call_kwargs
    from diffexp.models import load_pipeline

    cfg = to_config(compose(["model=tiny_wan22", "engine.device=cpu", "tracking.enabled=false"]))
    pipe = load_pipeline(cfg.model, torch.device("cpu"))
    calls: list[str] = []
    for name in ("transformer", "transformer_2"):
        getattr(pipe, name).register_forward_pre_hook(lambda *_, name=name: calls.append(name))
    pipe.set_progress_bar_config(disable=True)
    pipe(**call_kwargs(cfg, pipe), generator=torch.Generator("cpu").manual_seed(42))
    # Two calls a step (CFG): 2 steps of `transformer` (t >= 875), then 2 of `transformer_2`.
    assert calls == ["transformer"] * 4 + ["transformer_2"] * 4


def test_wan22_ulysses2_on_two_cpu_ranks_passes_the_review_against_one_process(store, runs_of):
    """Both experts' sequences split over 2 gloo ranks by diffusers' context parallelism, reviewed against run `a`."""
    from mlflow import MlflowClient

    from diffexp.review import PASS, verdict_of

    reference = runs_of("tiny_wan22")["a"]
    outcome = run_model(store, "tiny_wan22", "ulysses2", "parallel=ulysses2", f"review.reference={reference.run_id}")
    assert outcome.status == "FINISHED"
    run = MlflowClient(tracking_uri=store[1]).get_run(outcome.run_id)
    assert run.data.tags["parallel.layout"] == "cfg 1 × ring 1 × ulysses 2"
    assert verdict_of(run) == PASS


def test_flux2_torch_profile_has_step_and_block_scopes(store):
    import gzip
    import json

    outcome = run_model(store, "tiny_flux2", "profiled", "profile=torch", "profile.num_steps=2")
    assert outcome.status == "FINISHED" and outcome.result.profiled
    [trace] = (store[0] / "tiny_flux2" / "profiled" / "traces").glob("*.trace.json*")
    with gzip.open(trace) if trace.suffix == ".gz" else open(trace) as f:
        events = json.load(f)["traceEvents"]
    scopes = {e["name"] for e in events if e.get("cat") == "user_annotation"}
    # The first two steps, and each of FLUX.2's double- and single-stream blocks with its parts.
    assert {"denoise_step_0", "denoise_step_1"} <= scopes and "denoise_step_2" not in scopes
    assert {"transformer_blocks.0", "transformer_blocks.0.attn", "transformer_blocks.0.mlp"} <= scopes
    assert {"single_transformer_blocks.0", "single_transformer_blocks.1.attn"} <= scopes


def test_qwen_image_with_kernels_triton_takes_the_gelu_epilogue_and_passes_the_review(store, runs_of):
    """The one patch kernels/ has for Qwen-Image: each MLP's up-projection + tanh GELU as one op (on CPU its
    reference, the stock arithmetic), reviewed against run `a` of the same seed."""
    from mlflow import MlflowClient

    from diffexp.review import PASS, verdict_of

    reference = runs_of("tiny_qwen_image")["a"]
    outcome = run_model(store, "tiny_qwen_image", "triton", "kernels=triton", f"review.reference={reference.run_id}")
    assert outcome.status == "FINISHED"
    run = MlflowClient(tracking_uri=store[1]).get_run(outcome.run_id)
    assert run.data.params["kernels.impl"] == "triton" and run.data.params["kernels.gelu_epilogue"] == "True"
    assert verdict_of(run) == PASS
