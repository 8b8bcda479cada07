"""diffexp/tune/tune_h200.sh rehearsed on CPU (TUNE_REHEARSE=1: the tiny models), every step as a GPU call runs it:
the grid cut short by its trial budget and continued by a second call to its end, the tuner, the comparison, and
the video tuning with its input picture; in processes where MLflow cannot be imported, as on the GPU box. The space
is test_grid's (3 points on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import as_on_a_gpu_box
from tests.tune.test_grid import SPACE
from tests.tune.test_tune import ENV, REPO

pytestmark = pytest.mark.slow  # some ten tiny-model trial processes
SCRIPT = REPO / "diffexp" / "tune" / "tune_h200.sh"
STEPS = "model.sampling.num_inference_steps=2"


def step(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **as_on_a_gpu_box(ENV, tmp),
        "TUNE_REHEARSE": "1",
        "SPACE": str(tmp / "space.yaml"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    command = ["bash", str(SCRIPT), str(tmp / "out"), "24", *args]
    return subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("script")
    (tmp / "space.yaml").write_text(SPACE)
    names = ["grid_cut", "grid", "tuner", "compare", "video"]
    args = [["grid", STEPS, "tune.max_trials=1"], ["grid", STEPS], ["tuner", STEPS], ["compare"], ["video", STEPS]]
    done = {name: step(tmp, *a) for name, a in zip(names, args)}
    for name, proc in done.items():
        assert proc.returncode == 0, f"{name}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return tmp / "out", done


def test_a_cut_grid_is_continued_by_the_next_call_to_its_end(calls):
    out, done = calls
    assert "grid: 1 of 3 points (NOT exhaustive)" in done["grid_cut"].stdout
    assert "resumed: 1 finished trials" in done["grid"].stdout
    assert "grid: 3 of 3 points (exhaustive)" in done["grid"].stdout
    grid = json.loads((out / "24_grid" / "tune.json").read_text())
    assert [t["number"] for t in grid["trials"]] == [0, 1, 2] and grid["sessions"] == 2
    assert len({json.dumps(t["params"], sort_keys=True) for t in grid["trials"]}) == 3
    # Every call appends to one log, with the machine it ran on.
    assert (out / "grid_24.log").read_text().count("== grid over") == 2
    assert (out / "machine_24.txt").read_text().count("step grid") == 2


def test_the_tuner_gets_a_third_of_the_grid_and_the_comparison_judges_it(calls):
    out, done = calls
    assert "== tuner over" in done["tuner"].stdout and ": 1 trials, a third of its 3-point grid" in done["tuner"].stdout
    tuner = json.loads((out / "24_tuner" / "tune.json").read_text())
    assert len(tuner["trials"]) == 1
    got = json.loads((out / "24_compare" / "grid_comparison.json").read_text())
    assert (got["tuner"]["trials_used"], got["grid"]["trials_used"]) == (1, 3) and got["grid"]["exhaustive"]
    assert f"**{got['verdict']}**" in (out / "24_compare" / "grid_comparison.md").read_text()
    assert got["verdict"] in (out / "compare_24.log").read_text()


def test_the_video_step_tunes_the_video_model_with_its_input_picture(calls):
    out, done = calls
    video = json.loads((out / "24_video" / "tune.json").read_text())
    assert video["trials"], done["video"].stdout[-2000:]
    config = (out / "24_video" / "trials" / "000_full" / "config.yaml").read_text()
    assert "name: tiny_wan22_ti2v" in config and "winner:" in done["video"].stdout
    assert {p.name for p in (out / "assets").iterdir()} == {"cat.png", "astronaut.jpg"}


def test_an_unknown_step_is_refused_with_the_steps_there_are(tmp_path):
    proc = step(tmp_path, "sweep")
    assert proc.returncode == 2 and "unknown step sweep: tune, grid, tuner, compare or video" in proc.stderr
