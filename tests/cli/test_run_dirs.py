"""Runs started together get directories of their own: nothing one run writes lands in another's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from mlflow import MlflowClient
from omegaconf import OmegaConf
from PIL import Image

from tests.conftest import cli_env

SEEDS = (1, 2, 3, 4)


def _start(cwd, uri, seed):
    return subprocess.Popen(
        [sys.executable, "-m", "diffexp", f"tracking.uri={uri}", f"model.sampling.seed={seed}"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(),
    )


def test_concurrent_runs_keep_their_own_directories_and_artifacts(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = _start(tmp_path, uri, 0)  # creates the store (its first-use migration is not under test here)
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, out[-3000:]

    procs = [_start(tmp_path, uri, seed) for seed in SEEDS]
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]

    run_dirs = sorted(p.parent for p in (tmp_path / "outputs" / "tiny_flux").glob("*/config.yaml"))
    assert len(run_dirs) == 1 + len(SEEDS), run_dirs
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny_flux").experiment_id])
    runs = [r for r in runs if r.data.params["model.sampling.seed"] != "0"]
    assert sorted(int(r.data.params["model.sampling.seed"]) for r in runs) == list(SEEDS)
    assert len({r.data.params["output_dir"] for r in runs}) == len(SEEDS)

    images = {}
    for run in runs:
        seed = int(run.data.params["model.sampling.seed"])
        logged = client.download_artifacts(run.info.run_id, "", str(tmp_path / "download" / str(seed)))
        assert OmegaConf.load(f"{logged}/config.yaml").model.sampling.seed == seed
        image = np.asarray(Image.open(f"{logged}/outputs/image_000.png"))
        on_disk = np.asarray(Image.open(f"{run.data.params['output_dir']}/outputs/image_000.png"))
        assert OmegaConf.load(f"{run.data.params['output_dir']}/config.yaml").model.sampling.seed == seed
        np.testing.assert_array_equal(image, on_disk)
        images[seed] = image.tobytes()
    assert len(set(images.values())) == len(SEEDS), "two seeds logged the same image"
