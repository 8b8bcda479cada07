"""The tuner end to end on CPU with the tiny FLUX (2 steps), real processes and a real MLflow store: each trial
state is forced by a knob that produces it reliably on a noisy box —

    pruned      kernels=triton through Triton's interpreter (about 100× slower than torch on CPU)
    review-fail a changed noise schedule (sigmas 1.0, 0.05: 38.5 dB against the reference, under the 40 dB bound)
    infeasible  a host budget below the tiny pipeline's RSS (about 0.6 GiB)

Every process runs with one intra-op thread: two threads on two cores shared with other test runs make tiny-model
timings erratic by 10-40× (spin-waiting threads), one thread only by the time-slicing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffexp.compare.noise import verdict
from tests.conftest import as_on_a_gpu_box

REPO = Path(__file__).resolve().parents[2]
COMMON = ["model=tiny_flux", "model.sampling.num_inference_steps=2"]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
# The re-run happens minutes after the tuning on a box other test runs share: how far its median may be from the
# winner's before it is not the same work.
REPRODUCE_MAX_RATIO = 5.0

SPACE = """
name: states
space:
  variant:
    choices:
      default: []
      triton: {overrides: [kernels=triton, compile.warmup_runs=0], env: {TRITON_INTERPRET: "1"}}
      new_schedule: ["+model.call_kwargs.sigmas=[1.0,0.05]"]
anchors:
  sdpa: [attention=torch_sdpa]
repeats: 3
probe_repeats: 1
# Only the interpreter's slowdown is hopeless at this margin: tiny runs on a shared 2-core box vary by 2-5×.
prune_margin: 4.0
"""


# A GPU box has no MLflow and no plotly: an untracked tuning must run with importing them failing (2026-12-02: the
# review gate and the report reached MLflow through package imports, and the chart needs plotly).
def tune(tmp: Path, *args: str, timeout: float = 400, without_mlflow: bool = False) -> subprocess.CompletedProcess:
    env = as_on_a_gpu_box(ENV, tmp) if without_mlflow else ENV
    command = [sys.executable, "-m", "diffexp.tune", *args]
    return subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)


def children(client, parent_id: str) -> dict[str, object]:
    runs = client.search_runs(
        [client.get_run(parent_id).info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    return {r.data.tags["tune.key"]: r for r in runs}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tune")
    (tmp / "space.yaml").write_text(SPACE)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    done = tune(tmp, f"tune={tmp / 'space.yaml'}", f"tune.out={tmp / 'out'}", *COMMON, f"tracking.uri={uri}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads((tmp / "out" / "tune.json").read_text())
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    parent = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.`diffexp.role` = 'tune'")[
        0
    ]
    return tmp, uri, data, client, parent, done.stdout


def test_each_state_is_recorded_and_only_a_feasible_trial_wins(tuned):
    tmp, uri, data, client, parent, stdout = tuned
    by_name = {t["name"]: t for t in data["trials"]}
    assert by_name["reference"]["state"] == "feasible" and by_name["reference"]["correctness"] == "reference"
    triton = next(t for t in data["trials"] if t["overrides"][:1] == ["kernels=triton"])
    assert triton["state"] == "pruned" and "probe" in triton["reason"]
    schedule = next(t for t in data["trials"] if "sigmas" in " ".join(t["overrides"]))
    assert schedule["state"] == "infeasible" and schedule["correctness"] == "fail"
    winner = data["trials"][data["winner"]]
    assert winner["state"] == "feasible" and winner["name"] in ("reference", "anchor:sdpa")
    # In MLflow: one child per trial stage, tagged with its state; the pruned trial has only its probe.
    kids = children(client, parent.info.run_id)
    assert kids[f"{triton['number']}/probe"].data.tags["tune.state"] == "pruned"
    assert f"{triton['number']}/full" not in kids
    failed = kids[f"{schedule['number']}/probe"]
    assert failed.data.tags["tune.state"] == "infeasible" and failed.data.tags["correctness"] == "fail"
    # The trials were reviewed against the reference trial's run (review.reference=<run id>).
    assert failed.data.params["review.reference"] == kids["0/full"].info.run_id
    assert kids["0/full"].info.status == "FINISHED"
    tags = client.get_run(parent.info.run_id).data.tags
    assert tags["tune.interrupted"] == "false" and tags["tune.winner"] == str(data["winner"])
    assert tags["tune.command"].startswith("python -m diffexp ")
    assert (
        tags["tune.sglang_command"].startswith("sglang generate ")
        and "--num-inference-steps 2" in tags["tune.sglang_command"]
    )
    assert "tune.gain.anchor:sdpa" in tags
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"tune.json", "trials.md", "trials.csv", "tune_chart.html"} <= artifacts
    assert "reproduce:" in stdout and "sglang:" in stdout


def test_report_rebuilds_the_table_from_mlflow(tuned, tmp_path):
    tmp, uri, data, client, parent, _ = tuned
    from diffexp.report import main

    assert main(["--tracking-uri", uri, "tune", parent.info.run_id, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "trials.md").read_text() == (tmp / "out" / "trials.md").read_text()
    html = (tmp_path / "tune_chart.html").read_text()
    assert "Pareto front" in html


def test_the_winners_command_runs_the_winning_config_and_reproduces_its_figures(tuned, tmp_path):
    import dataclasses
    from statistics import median

    from diffexp.config.store import load_config_yaml
    from diffexp.tune.trial import TRIAL_CONFIG

    tmp, uri, data, client, parent, _ = tuned
    command = data["command"].split()
    assert command[:3] == ["python", "-m", "diffexp"]
    again = subprocess.run(
        [sys.executable, "-m", "diffexp", *command[3:], "tracking.enabled=false", f"hydra.run.dir={tmp_path}"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    winner = data["trials"][data["winner"]]
    # The same run, field by field: what the line reproduces exactly (the trial was also reviewed against the
    # tuning's reference trial, and recorded where the tuning records).
    ran, won = (
        dataclasses.asdict(load_config_yaml(p)) for p in (tmp_path / "config.yaml", Path(winner["dir"]) / TRIAL_CONFIG)
    )
    for config in (ran, won):
        del config["output_dir"], config["tracking"], config["review"]["reference"]
    assert ran == won
    rerun = [r["denoise_s"] for r in json.loads((tmp_path / "metrics.json").read_text())["repeats"]]
    assert len(rerun) == len(winner["sample"]) == 3
    # The figures, minutes later on a box other test runs share: a 2-5x swing is load (the module docstring), so the
    # noise verdict cannot be the test here (CI saw +166 % [+26, +238] % for the same config). What can be: the
    # rerun is the same work, not another point of the space (the interpreter's point is 100x slower).
    ratio = median(rerun) / median(winner["sample"])
    assert 1 / REPRODUCE_MAX_RATIO < ratio < REPRODUCE_MAX_RATIO, (ratio, verdict(winner["sample"], rerun).text())


def test_a_budget_below_every_config_has_no_winner_untracked_then_logged(tmp_path):
    (tmp_path / "space.yaml").write_text("name: one\nspace:\n  variant:\n    choices:\n      default: []\nrepeats: 2\n")
    done = tune(
        tmp_path,
        f"tune={tmp_path / 'space.yaml'}",
        f"tune.out={tmp_path / 'out'}",
        "tune.host_gib=0.3",
        *COMMON,
        "tracking.enabled=false",
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "NO WINNER" in done.stdout
    data = json.loads((tmp_path / "out" / "tune.json").read_text())
    (trial,) = data["trials"]
    assert trial["state"] == "infeasible" and "> budget 0.3 GiB" in trial["reason"] and trial["host_gib"] > 0.3
    assert data["winner"] is None and (tmp_path / "out" / "trials.csv").is_file()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logged = tune(tmp_path, "--log", str(tmp_path / "out"), "--tracking-uri", uri)
    assert logged.returncode == 0, logged.stderr[-2000:]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    parent = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.`diffexp.role` = 'tune'")[
        0
    ]
    (child,) = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert child.data.tags["tune.state"] == "infeasible" and child.data.metrics["peak_mem_gib.cpu"] > 0.3


def test_an_interrupted_tuning_keeps_its_finished_trials_and_ends_killed(tmp_path):
    space = "name: two\nspace:\n  attention:\n    choices:\n      default: []\n      sdpa: [attention=torch_sdpa]\nrepeats: 2\nprobe_repeats: 2\n"
    (tmp_path / "space.yaml").write_text(space)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "diffexp.tune",
            f"tune={tmp_path / 'space.yaml'}",
            f"tune.out={tmp_path / 'out'}",
            *COMMON,
            f"tracking.uri={uri}",
        ],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    trials = tmp_path / "out" / "trials"
    deadline = time.monotonic() + 240
    while not (trials / "001_full" / "config.yaml").is_file():  # the first trial is done, the second started
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()[-3000:]
        time.sleep(0.5)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    parent = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.`diffexp.role` = 'tune'")[
        0
    ]
    assert parent.info.status == "KILLED" and parent.data.tags["tune.interrupted"] == "true"
    kids = children(client, parent.info.run_id)
    assert kids["0/full"].info.status == "FINISHED" and kids["0/full"].data.tags["tune.state"] == "feasible"
    assert all(r.info.status != "RUNNING" for r in kids.values())
    assert json.loads((tmp_path / "out" / "tune.json").read_text())["interrupted"] is True


def test_the_untracked_review_judges_the_trial_folders_as_the_tracked_one_did(tuned):
    """tracking.enabled=false (a GPU box without a store): the same comparison runs on the trials' folders."""
    tmp, uri, data, client, parent, _ = tuned
    from diffexp.tune.gate import review_files

    folders = {t["name"]: Path(t["dir"]) for t in data["trials"]}
    reference = folders["reference"]
    schedule = next(t for t in data["trials"] if "sigmas" in " ".join(t["overrides"]))
    verdict_, why = review_files(Path(schedule["dir"]), reference)
    assert verdict_ == "fail" and "PSNR" in why
    assert review_files(folders["anchor:sdpa"], reference)[0] == "pass"
