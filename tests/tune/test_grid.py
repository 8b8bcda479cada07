"""The exhaustive grid (tune.search=grid) and the tuner judged against it, on CPU with the tiny FLUX (2 steps), real
trial processes and a real MLflow store. One small space with each kind of structure a space has:

    offload     cuda_only: not searched on CPU
    attention   two choices
    tolerance   a stepped range searched only `when` attention=sdpa (a harmless knob: measure.warmup_tolerance)
    steps       one lossless choice and a lossy one: searched only with allow_lossy

so its grid on CPU has 3 points, counted here from the YAML on its own. The grid runs first with a trial budget
that cuts it short (1 trial), then resumed to its end; the tuner runs with a third of the grid's trials (1).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

import psutil
import pytest
import yaml

from diffexp.compare.grid_goal import CANNOT_SAY, MET, NOT_MET, goal_verdict
from diffexp.compare.noise import slower_by_at_most
from diffexp.measure import stats
from tests.conftest import as_on_a_gpu_box
from tests.tune.test_tune import COMMON, ENV, tune

SPACE = """
name: grid_states
space:
  offload:
    cuda_only: true
    choices:
      resident: [offload=none]
      layerwise: [offload=layerwise]
  attention:
    choices:
      default: [attention=default]
      sdpa: [attention=torch_sdpa]
  tolerance:
    when: {attention: [sdpa]}
    key: measure.warmup_tolerance
    low: 0.02
    high: 0.04
    step: 0.02
  steps:
    choices:
      model: []
      fewer: [model.sampling.num_inference_steps=1]
    lossy: [fewer]
anchors:
  sdpa: [attention=torch_sdpa]
repeats: 3
# No probes: every trial is measured in full once (the probe-and-prune path is test_tune.py's).
probe_repeats: 3
"""


def grid_points(text: str, cuda: bool, allow_lossy: bool) -> list[str]:
    """The space's distinct points, counted from the YAML alone: every combination of the searched params' values,
    each param kept only where its `when` holds, duplicates merged."""
    params = {}
    for name, spec in yaml.safe_load(text)["space"].items():
        if spec.get("cuda_only") and not cuda:
            continue
        if "choices" in spec:
            values = [c for c in spec["choices"] if allow_lossy or c not in spec.get("lossy", [])]
        else:
            count = round((spec["high"] - spec["low"]) / spec["step"]) + 1
            values = [round(spec["low"] + i * spec["step"], 6) for i in range(count)]
        params[name] = (values, spec.get("when", {}))
    points = set()
    for combo in itertools.product(*(values for values, _ in params.values())):
        full = dict(zip(params, combo))
        kept = {k: v for k, v in full.items() if all(full[o] in labels for o, labels in params[k][1].items())}
        points.add(json.dumps(kept, sort_keys=True))
    return sorted(points)


def key(params: dict) -> str:
    return json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in params.items()}, sort_keys=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grid")
    (tmp / "space.yaml").write_text(SPACE)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    grid = [f"tune={tmp / 'space.yaml'}", "tune.search=grid", f"tune.out={tmp / 'grid'}", *COMMON]
    # untracked, as on a GPU box: with MLflow unimportable
    cut = tune(tmp, *grid, "tune.max_trials=1", "tracking.enabled=false", without_mlflow=True)
    assert cut.returncode == 0, cut.stdout[-3000:] + cut.stderr[-3000:]
    shutil.copytree(tmp / "grid", tmp / "grid_cut")
    resumed = tune(tmp, *grid, "tune.max_trials=10", "tune.resume=true", "tracking.enabled=false", without_mlflow=True)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    tuner = tune(
        tmp,
        f"tune={tmp / 'space.yaml'}",
        "tune.max_trials=1",
        f"tune.out={tmp / 'tuner'}",
        *COMMON,
        f"tracking.uri={uri}",
    )
    assert tuner.returncode == 0, tuner.stdout[-3000:] + tuner.stderr[-3000:]
    logged = tune(tmp, "--log", str(tmp / "grid"), "--tracking-uri", uri)
    assert logged.returncode == 0, logged.stderr[-2000:]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    parents = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.`diffexp.role` = 'tune'")
    ids = {p.data.params["tune.search"]: p.info.run_id for p in parents}
    return {"tmp": tmp, "uri": uri, "cut": cut, "resumed": resumed, "client": client, "ids": ids}


def test_an_untracked_grid_without_mlflow_or_plotly_is_logged_later_with_its_chart(runs):
    """The grid's two sessions ran with MLflow and plotly unimportable (a GPU box): no chart then, the figures
    kept; `--log` on a machine with both drew the chart and logged it with the parent."""
    assert "no latency-memory chart" in runs["cut"].stderr and "no latency-memory chart" in runs["resumed"].stderr
    assert (runs["tmp"] / "grid" / "tune_chart.html").is_file()
    artifacts = {a.path for a in runs["client"].list_artifacts(runs["ids"]["grid"])}
    assert {"tune.json", "trials.md", "trials.csv", "tune_chart.html"} <= artifacts


def summary(folder: Path) -> dict:
    return json.loads((folder / "tune.json").read_text())


def test_the_grid_runs_every_point_of_the_space_exactly_once(runs):
    tmp = runs["tmp"]
    expected = grid_points(SPACE, cuda=False, allow_lossy=False)
    assert len(expected) == 3  # default; sdpa × tolerance 0.02, 0.04 (no offload on CPU, no lossy steps)
    data = summary(tmp / "grid")
    visited = [key(t["params"]) for t in data["trials"]]
    assert sorted(visited) == expected  # each once, nothing else (no anchors in a grid)
    assert data["trials"][0]["name"] == "reference" and data["trials"][0]["params"] == {
        "attention": "default",
        "steps": "model",
    }
    assert all(t["done"] and t["kind"] in ("reference", "search") for t in data["trials"])
    assert data["coverage"] == {"size": 3, "visited": 3, "exhaustive": True}
    assert data["stopped"] == "every point of the space ran (3)" and data["sessions"] == 2
    assert data["wall_s"] > summary(tmp / "grid_cut")["wall_s"] > 0
    # The size is stated before the grid starts, and the end says it is exhaustive.
    assert "grid over grid_states: 3 points (attention, tolerance, steps); 2 to run" in runs["resumed"].stderr
    assert "grid: 3 of 3 points (exhaustive)" in runs["resumed"].stdout
    # The resumed session ran only what the first had not: its trial 0 is the first session's, re-read.
    assert summary(tmp / "grid_cut")["trials"][0]["sample"] == data["trials"][0]["sample"]
    # Logged, the parent carries the same coverage.
    parent = runs["client"].get_run(runs["ids"]["grid"]).data
    assert parent.tags["tune.exhaustive"] == "true" and parent.tags["tune.space_size"] == "3"
    assert parent.tags["tune.trials"] == "3" and parent.metrics["tune.wall_s"] == pytest.approx(data["wall_s"])


def test_a_trial_budget_that_cuts_the_grid_short_is_reported_not_exhaustive(runs):
    tmp, cut = runs["tmp"], runs["cut"]
    assert "tune.max_trials=1 leaves room for 1 of the 3 points left: the grid will NOT be exhaustive" in cut.stderr
    assert "grid: 1 of 3 points (NOT exhaustive)" in cut.stdout
    data = summary(tmp / "grid_cut")
    assert data["coverage"] == {"size": 3, "visited": 1, "exhaustive": False}
    assert data["stopped"] == "tune.max_trials=1 reached"
    from diffexp.report import main

    out = tmp / "against_cut"
    assert main(["tune", str(tmp / "tuner"), "--against", str(tmp / "grid_cut"), "--out", str(out)]) == 0
    comparison = json.loads((out / "grid_comparison.json").read_text())
    assert comparison["verdict"] == CANNOT_SAY and not comparison["grid"]["exhaustive"]
    assert comparison["why"][0] == "the grid is not exhaustive: its best is not the best of the space"
    assert "1 of 3 points ran (stopped: tune.max_trials=1 reached)" in comparison["why"][1]


def expected_comparison(tuner: dict, grid: dict) -> dict:
    """The comparison recomputed from the two tunings' logged trials: the pick, the fastest feasible grid trial,
    the ratio of medians with the shared bootstrap, and the goal's rule written out."""
    pick = tuner["trials"][tuner["winner"]]
    feasible = [t for t in grid["trials"] if t["state"] == "feasible"]
    best = min(feasible, key=lambda t: median(t["sample"]))
    delta = stats.relative_delta(best["sample"], pick["sample"])
    low, high = 1 + delta.ci95_low_pct / 100, 1 + delta.ci95_high_pct / 100
    trials_ok = len(tuner["trials"]) * 3 <= grid["coverage"]["size"]
    if not trials_ok:
        verdict = NOT_MET
    elif high <= 1.05:
        verdict = MET
    elif low > 1.05:
        verdict = NOT_MET
    else:
        verdict = CANNOT_SAY
    return {
        "pick": pick,
        "best": best,
        "ratio": 1 + delta.pct / 100,
        "low": low,
        "high": high,
        "verdict": verdict,
        "trials": (len(tuner["trials"]), len(grid["trials"])),
    }


def test_the_comparison_follows_from_the_trials_logged_figures(runs, tmp_path):
    tmp, uri, ids = runs["tmp"], runs["uri"], runs["ids"]
    tuner, grid = summary(tmp / "tuner"), summary(tmp / "grid")
    want = expected_comparison(tuner, grid)
    from diffexp.report import main

    code = main(["--tracking-uri", uri, "tune", ids["tpe"], "--against", ids["grid"], "--out", str(tmp_path)])
    got = json.loads((tmp_path / "grid_comparison.json").read_text())
    assert code == (1 if want["verdict"] == NOT_MET else 0)
    assert got["verdict"] == want["verdict"]
    assert (got["tuner"]["number"], got["grid"]["number"]) == (want["pick"]["number"], want["best"]["number"])
    assert got["tuner"]["median_s"] == pytest.approx(median(want["pick"]["sample"]))
    assert got["grid"]["median_s"] == pytest.approx(median(want["best"]["sample"]))
    assert (got["ratio"], got["ratio_ci95_low"], got["ratio_ci95_high"]) == pytest.approx(
        (want["ratio"], want["low"], want["high"])
    )
    assert (got["tuner"]["trials_used"], got["grid"]["trials_used"]) == want["trials"] == (1, 3)
    assert got["tuner"]["wall_s"] == pytest.approx(tuner["wall_s"])
    assert got["grid"]["wall_s"] == pytest.approx(grid["wall_s"])
    assert got["grid"]["exhaustive"] and got["trials_within"]
    md = (tmp_path / "grid_comparison.md").read_text()
    assert f"**{want['verdict']}**" in md and (tmp_path / "trials.md").is_file()
    # The same tunings read from their folders: the same figures.
    folders = tmp_path / "folders"
    main(["tune", str(tmp / "tuner"), "--against", str(tmp / "grid"), "--out", str(folders)])
    again = json.loads((folders / "grid_comparison.json").read_text())
    for field in ("ratio", "ratio_ci95_low", "ratio_ci95_high", "verdict", "within", "trials_within"):
        assert again[field] == got[field]


def test_runs_that_are_not_a_tuner_and_a_grid_of_one_space_are_refused(runs, tmp_path):
    tmp = runs["tmp"]
    from diffexp import cli
    from diffexp.report import main

    swapped = ["tune", str(tmp / "grid"), "--against", str(tmp / "tuner"), "--out", str(tmp_path)]
    assert cli.run(main, swapped) == cli.EXIT_UNUSABLE
    assert not (tmp_path / "grid_comparison.json").exists()
    # Resuming with other settings than the folder's is refused before any trial.
    other = tune(
        tmp,
        f"tune={tmp / 'space.yaml'}",
        "tune.resume=true",
        f"tune.out={tmp / 'grid'}",
        *COMMON,
        "tracking.enabled=false",
    )
    assert other.returncode == 2 and "tuned with other settings: search" in other.stderr


@pytest.mark.parametrize(
    "trials, exhaustive, pick, best, within, verdict",
    [
        (2, False, True, True, True, NOT_MET),  # more than a third of 3: decided without the grid's best
        (1, False, True, True, True, CANNOT_SAY),  # the grid is not exhaustive
        (1, True, True, False, None, CANNOT_SAY),  # nothing in the space fits
        (1, True, False, True, None, NOT_MET),  # the grid found one, the tuner none
        (1, True, True, True, None, CANNOT_SAY),  # the noise is too wide
        (1, True, True, True, False, NOT_MET),
        (1, True, True, True, True, MET),
    ],
)
def test_the_goal_verdict(trials, exhaustive, pick, best, within, verdict):
    assert goal_verdict(trials, 3, exhaustive, pick, best, within)[0] == verdict


def test_at_most_five_percent_slower_is_a_one_sided_bound_on_the_interval():
    def delta(pct, low, high):
        return stats.Delta(pct, low, high, 3, 3)

    assert slower_by_at_most(delta(-20.0, -30.0, -10.0), 5.0) is True  # faster is within the bound
    assert slower_by_at_most(delta(3.0, 1.0, 5.0), 5.0) is True
    assert slower_by_at_most(delta(8.0, 5.5, 9.0), 5.0) is False
    assert slower_by_at_most(delta(4.0, 2.0, 6.0), 5.0) is None
    assert slower_by_at_most(delta(0.0, None, None), 5.0) is None


def test_a_grid_over_a_continuous_range_is_refused(tmp_path):
    from diffexp.errors import ConfigError
    from diffexp.tune.config import load_tune_config

    (tmp_path / "s.yaml").write_text(
        "name: c\nspace:\n  t:\n    key: measure.warmup_tolerance\n    low: 0.0\n    high: 1.0\n"
    )
    load_tune_config(str(tmp_path / "s.yaml"), [])  # the TPE search samples it
    with pytest.raises(ConfigError, match="a grid needs a step"):
        load_tune_config(str(tmp_path / "s.yaml"), ["search=grid"])


def test_the_h200_script_parses():
    script = Path(__file__).resolve().parents[2] / "diffexp" / "tune" / "tune_h200.sh"
    assert subprocess.run(["bash", "-n", str(script)], env=ENV).returncode == 0


def command_of(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # it has just exited
        return ""


def test_a_killed_grid_keeps_its_finished_trials_and_resumes_from_them(tmp_path):
    """SIGKILL (a job's time limit, the OOM killer) gives no chance to write anything: tune.json must already hold
    every finished trial, and the resumed grid must run the killed trial again in a clean folder."""
    (tmp_path / "space.yaml").write_text(SPACE)
    args = [f"tune={tmp_path / 'space.yaml'}", "tune.search=grid", f"tune.out={tmp_path / 'grid'}", *COMMON]
    args.append("tracking.enabled=false")
    proc = subprocess.Popen(
        [sys.executable, "-m", "diffexp.tune", *args, "tune.max_trials=10"],
        cwd=tmp_path, env=as_on_a_gpu_box(ENV, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    second = tmp_path / "grid" / "trials" / "001_full" / "config.yaml"
    deadline = time.monotonic() + 300
    while not second.is_file():  # the first trial is done (checkpointed), the second under way
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()[-3000:]
        time.sleep(0.2)
    trial = []
    while not trial:  # the second trial's process (its config is written just before it starts)
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()[-3000:]
        trial = [c for c in psutil.Process(proc.pid).children() if "diffexp.tune.trial" in command_of(c)]
        time.sleep(0.1)
    assert os.getpgid(trial[0].pid) != os.getpgid(proc.pid)  # in a process group of its own: killpg misses it
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    # The trial dies with the tuning (PDEATHSIG): it must not write on into the folder the resumed session reuses.
    _, alive = psutil.wait_procs(trial, timeout=30)
    assert not alive, f"trial process {alive} outlived the killed tuning"
    killed = json.loads((tmp_path / "grid" / "tune.json").read_text())
    assert [(t["number"], t["done"]) for t in killed["trials"]] == [(0, True)]
    assert killed["interrupted"] is True and killed["stopped"].startswith("not finished: written after trial 0")
    resumed = tune(tmp_path, *args, "tune.max_trials=10", "tune.resume=true", without_mlflow=True)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "removing 001_full: its trial did not finish" in resumed.stderr
    done = json.loads((tmp_path / "grid" / "tune.json").read_text())
    assert [t["number"] for t in done["trials"]] == [0, 1, 2] and done["coverage"]["exhaustive"]
    assert done["interrupted"] is False and done["sessions"] == 2
    assert done["trials"][0]["sample"] == killed["trials"][0]["sample"]  # the killed session's figures, kept
