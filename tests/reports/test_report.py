"""`python -m diffexp.report suite`: the guide's table from a real MLflow store, latest valid run per model and GPU.
(The sweep report rebuilt from MLflow is tested against the logged one in tests/sweeps/test_tiny_smoke.py.)"""

from __future__ import annotations

import time

import pytest

from diffexp import names
from diffexp.report import main
from diffexp.reports.suite import suite_runs, suite_table
from diffexp.results import RunResult
from diffexp.tracking.writer import RunRecorder

GUIDE_HEADER = (
    "| Model | Task | Steps | Resolution | Denoise (s) ★ | Step (ms) | E2E (s) | Peak Mem (GiB) | SGLang Ver | GPU |"
    " Denoise 95 % interval | Floor (ms), efficiency | SGLang H200 (published) |"
)


def _run(
    uri, model, label, task, denoise, gpu="NVIDIA H100 80GB HBM3", gpus="1", valid="true", status_ok=True, tags=None,
    recipe=None, extra=None, **sampling,
):  # fmt: skip
    params = {
        "model.name": model,
        "model.label": label,
        "model.task": "t2v" if "fr" in str(sampling) else "t2i",
        "model.task_label": task,
        "parallel.num_gpus": gpus,
        "engine.name": "sglang",
        "recipe": str(recipe),
        **{
            f"model.sampling.{k}": str(v)
            for k, v in {
                "width": None,
                "height": None,
                "resolution": None,
                "num_frames": None,
                "num_inference_steps": None,
                **sampling,
            }.items()
        },
    }
    tags = {
        "model": model,
        "engine": "sglang",
        "valid": valid,
        "version.sglang": "0.5.23",
        "gpu.names": gpu,
        **(tags or {}),
    }
    with RunRecorder(uri, model, model, params, tags) as rec:
        steps = int(sampling.get("num_inference_steps") or 1)
        result = RunResult(denoise_s=denoise, e2e_s=denoise + 1.5, peak_mem_gib=30.25, valid=valid == "true")
        result.denoise_step_ms = [1000 * denoise / steps] * steps
        for name, value in (extra or {}).items():  # e.g. a repeated run's spread, a measured floor
            setattr(result, name, value)
        rec.log_result(result)
        if not status_ok:
            rec.status = "FAILED"
    time.sleep(0.01)  # distinct start times: "latest" must be well defined
    return rec.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('suite') / 'mlflow.db'}"
    flux = dict(width=1024, height=1024, num_inference_steps=50)
    _run(uri, "flux1_dev", "FLUX.1-dev", "T2I", 20.0, **flux)  # older: replaced by the next one
    _run(uri, "flux1_dev", "FLUX.1-dev", "T2I", 18.5, **flux)
    _run(uri, "flux1_dev", "FLUX.1-dev", "T2I", 1.0, valid="false", **flux)  # e.g. fell back to diffusers: not reported
    _run(uri, "flux1_dev", "FLUX.1-dev", "T2I", 2.0, status_ok=False, **flux)
    # Another GPU: its own row. Measured 5 times, with its compute floor (measure.floor=true).
    repeated = {
        "spread": {"denoise_s": {"n": 5, "ci95_low": 15.9512, "ci95_high": 16.0738}},
        "extra_metrics": {"floor.ms": 270.25, "floor.efficiency": 0.8445},
    }
    _run(uri, "flux1_dev", "FLUX.1-dev", "T2I", 16.0, gpu="NVIDIA H200", extra=repeated, **flux)
    _run(
        uri,
        "wan22_t2v",
        "Wan2.2-T2V-A14B 720P",
        "T2V",
        300.0,
        gpus="8",
        resolution="720p",
        num_frames=81,
        num_inference_steps=40,
        tags={"output.shape": "1280x704x81", "output.shape_mismatch": "requested 1280x720x81, got 1280x704x81"},
    )
    _run(uri, "tiny_flux", "tiny-FLUX", "T2I", 0.1, gpu="none", width=64, height=64, num_inference_steps=4)
    return uri


def test_latest_valid_run_per_model_and_gpu(store):
    table = suite_table(suite_runs(store)).splitlines()
    assert table[0] == GUIDE_HEADER
    rows = [line for line in table[2:] if line.startswith("| ")]
    assert [r.split(" | ")[0].lstrip("| ") for r in rows] == [
        "Qwen-Image-2512",
        "Qwen-Image-Edit-2511",
        "FLUX.1-dev",
        "FLUX.1-dev",
        "FLUX.2-dev",
        "Z-Image-Turbo",
        "Wan2.2-T2V-A14B 720P",
        "Wan2.2-TI2V-5B 720P",
    ]
    # Beside each row, SGLang's published H200 figure for the model where one exists, its conditions under the table.
    # not run yet
    assert "| Qwen-Image-2512 | T2I | 50 | 1024×1024 | - | - | - | - | - | - | - | - | 6.77 s [1] |" in rows
    assert (
        "| FLUX.1-dev | T2I | 50 | 1024×1024 | 18.500 | 370.0 | 20.000 | 30.25 | 0.5.23 | NVIDIA H100 80GB HBM3 |"
        " single shot: noise unknown | - | 7.69 s [2] |" in rows
    )
    # The headline with its interval over the repeats, the floor of its step and the step's share of it.
    assert (
        "| FLUX.1-dev | T2I | 50 | 1024×1024 | 16.000 | 320.0 | 17.500 | 30.25 | 0.5.23 | NVIDIA H200 |"
        " [15.951, 16.074] (n=5) | 270.2, 84.5 % | 7.69 s [2] |" in rows
    )
    assert (
        "| Wan2.2-T2V-A14B 720P | T2V | 40 | 720P 81fr | 300.000 | 7500.0 | 301.500 | 30.25 | 0.5.23 | 8× NVIDIA H100 80GB HBM3 |"
        " single shot: noise unknown | - | - |" in rows
    )
    assert "| Z-Image-Turbo | T2I Turbo | 9 | 1024×1024 | - | - | - | - | - | - | - | - | 1.35 s [3] |" in rows
    assert not any("tiny-FLUX" in r for r in rows)
    notes = [line for line in table if line.startswith("> [")]
    assert notes[1] == (
        "> [2] SGLang, published: 7.69 s E2E, FLUX.1-dev, 1024², 50 steps, 1×H200, SGLang's default profile, "
        "client-side (SGLang team, cross-framework benchmark reports (LMSYS blog, 2025-11-07 / 2026-01-16))"
    )
    assert [n[:4] for n in notes] == ["> [1", "> [2", "> [3"]
    # What ran, where the pipeline changed the request: under the table, beside its row's figures.
    assert (
        "> Wan2.2-T2V-A14B 720P (8× NVIDIA H100 80GB HBM3): ⚠ OUTPUT SHAPE NOT AS ASKED: requested 1280x720x81, got 1280x704x81"
        in table
    )


def test_suite_command(store, capsys):
    assert main(["--tracking-uri", store, "suite", "--all"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(GUIDE_HEADER) and "| tiny-FLUX | T2I | 4 | 64×64 | 0.100 | 25.0 |" in out and "| CPU |" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["bogus"])
    assert exit_info.value.code == 2


def test_a_run_that_did_not_run_what_it_asked_is_flagged_under_the_table(tmp_path):
    """SGLang swallowed the compile flag (JoyAI's pipeline config): the suite table says so beside the figures."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = _run(uri, "flux1_dev", "FLUX.1-dev", "T2I", 5.0, width=1024, height=1024, num_inference_steps=50)
    from mlflow import MlflowClient

    MlflowClient(uri).set_tag(
        run_id, "resolved.mismatch", "compile.enabled=true but SGLang ran enable_torch_compile=false"
    )
    table = suite_table(suite_runs(uri))
    assert "> FLUX.1-dev (NVIDIA H100 80GB HBM3): ⚠ DID NOT RUN WHAT WAS ASKED: compile.enabled=true" in table


def test_a_recipe_point_run_otherwise_than_its_recipe_is_flagged_under_the_table(tmp_path):
    """Wan2.2-T2V-A14B's recipe is 8 GPUs and 40 steps; measured on one H200 with 10 steps, the table says both."""
    import json

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = {names.SWEEP_OVERRIDES: json.dumps(["+recipe=wan22_t2v"])}
    _run(uri, "wan22_t2v", "Wan2.2-T2V-A14B 720P", "T2V", 30.0, gpu="NVIDIA H200", tags=overrides,
         resolution="720p", num_frames=81, num_inference_steps=10)  # fmt: skip
    _run(uri, "flux1_dev", "FLUX.1-dev", "T2I", 5.0, tags={names.SWEEP_OVERRIDES: json.dumps(["+recipe=flux1_dev"])},
         width=1024, height=1024, num_inference_steps=50)  # fmt: skip
    # A single run of a recipe (no sweep) records it in its config: flagged the same way.
    _run(uri, "wan22_ti2v", "Wan2.2-TI2V-5B 720P", "TI2V", 10.0, gpu="NVIDIA H200", recipe="wan22_ti2v",
         resolution="720p", num_frames=81, num_inference_steps=10)  # fmt: skip
    table = suite_table(suite_runs(uri))
    assert "| Wan2.2-T2V-A14B 720P | T2V | 10 | 720P 81fr | 30.000 | 3000.0 | 31.500 |" in table  # per step beside it
    notes = [line for line in table.splitlines() if "NOT THE RECIPE AS WRITTEN" in line]
    assert notes == [  # newest run first
        "> Wan2.2-TI2V-5B 720P (NVIDIA H200): NOT THE RECIPE AS WRITTEN: model.sampling.num_inference_steps=10 where "
        "recipe wan22_ti2v has 50",
        "> Wan2.2-T2V-A14B 720P (NVIDIA H200): NOT THE RECIPE AS WRITTEN: parallel.num_gpus=1 where recipe wan22_t2v "
        "has 8; model.sampling.num_inference_steps=10 where recipe wan22_t2v has 40",
    ]  # and none for FLUX.1-dev, run as its recipe says


def test_the_steps_column_is_what_a_measured_generation_ran(tmp_path):
    """FLUX.2-dev's recipe leaves the step count to the pipeline (50): the column shows the 50 steps its per-step
    series holds, not '-'; a run whose series differs from what it asked says both."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _run(uri, "flux2_dev", "FLUX.2-dev", "T2I", 22.0, gpu="NVIDIA H200", width=1024, height=1024,
         extra={"denoise_step_ms": [440.0] * 50})  # fmt: skip
    _run(uri, "zimage_turbo", "Z-Image-Turbo", "T2I Turbo", 0.9, gpu="NVIDIA H200", width=1024, height=1024,
         num_inference_steps=8, extra={"denoise_step_ms": [100.0] * 9})  # fmt: skip
    table = suite_table(suite_runs(uri))
    assert "| FLUX.2-dev | T2I | 50 | 1024×1024 | 22.000 | 440.0 |" in table
    assert "| Z-Image-Turbo | T2I Turbo | 9 (asked 8) | 1024×1024 | 0.900 | 100.0 |" in table
