"""Ingest refuses dumps nothing can use (compare's schema rule) and never uploads what is not the dump's own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from diffexp.config.schema import TrackingConfig
from diffexp.ingest import ingest, look_beside
from tests.conftest import artifact_paths, cli_env

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sglang"

# name: (how the real recorded dump is broken, what the message names)
BROKEN = {
    "nan_total": (lambda d: d.update(total_duration_ms=float("nan")), "total_duration_ms is nan"),
    "inf_stage": (lambda d: d["steps"][0].update(duration_ms=float("inf")), "duration_ms is inf"),
    "absurd_total": (lambda d: d.update(total_duration_ms=1e305), "total_duration_ms is 1e+305 ms"),
    "negative_step": (
        lambda d: d["denoise_steps_ms"][1].update(duration_ms=-3.0),
        "denoise step 1 duration_ms is -3.0",
    ),
    "string_total": (lambda d: d.update(total_duration_ms="70"), "total_duration_ms is '70', not a duration"),
    "steps_text": (lambda d: d.update(steps="x"), "`steps` is 'x'"),
    "step_number": (lambda d: d["steps"].append(5), "a `steps` entry is 5"),
    "stage_name_int": (lambda d: d["steps"][0].update(name=7), "a `steps` entry is {'name': 7"),
    "per_step_dict": (lambda d: d.update(denoise_steps_ms={"a": 1}), "denoise_steps_ms is {'a': 1}, not a list"),
    "step_index_text": (lambda d: d["denoise_steps_ms"][0].update(step="zero"), "denoise step 0 step is 'zero'"),
    "memory_list": (lambda d: d.update(memory_checkpoints=[1]), "memory_checkpoints is [1]"),
    "memory_value": (lambda d: d.update(memory_checkpoints={"end": {"peak_reserved_mb": "big"}}), "peak_reserved_mb"),
    "meta_list": (lambda d: d.update(meta=["a"]), "meta is ['a'], not an object"),
    "meta_prompt_int": (lambda d: d["meta"].update(prompt=5), "meta.prompt is 5"),
    "meta_model_int": (lambda d: d["meta"].update(model=5), "meta.model is 5, not text"),
    "request_id_int": (lambda d: d.update(request_id=5), "request_id is 5, not text"),
    "top_level_list": (lambda d: d.clear(), "not an SGLang perf dump"),
}


def _folder(tmp_path: Path, case: str = "cpu_flux_warmup") -> Path:
    return Path(shutil.copytree(FIXTURES / case, tmp_path / case))


def _ingest_cli(tmp_path: Path, *paths: Path) -> subprocess.CompletedProcess:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return subprocess.run(
        [sys.executable, "-m", "diffexp.ingest", *map(str, paths), "--tracking-uri", uri],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
        cwd=tmp_path,
    )


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_dump_exits_2_naming_file_and_field_and_logs_nothing(case, tmp_path):
    folder = _folder(tmp_path)
    dump = folder / "perf_dump.json"
    data = json.loads(dump.read_text())
    BROKEN[case][0](data)
    dump.write_text(json.dumps(data if data else []))
    proc = _ingest_cli(tmp_path, dump)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert str(dump) in proc.stderr and BROKEN[case][1] in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "mlflow.db").exists()  # refused before any run was created


def test_a_bad_dump_among_good_ones_logs_none(tmp_path):
    good = _folder(tmp_path, "cpu_flux_native") / "perf_dump.json"
    bad = _folder(tmp_path, "cpu_flux_warmup") / "perf_dump.json"
    bad.write_text(bad.read_text().replace('"total_duration_ms": 70.29346199942665', '"total_duration_ms": -1'))
    proc = _ingest_cli(tmp_path, good, bad)
    assert proc.returncode == 2 and "total_duration_ms is -1" in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_links_out_of_the_folder_are_never_attached(tmp_path):
    folder = _folder(tmp_path)
    secret = tmp_path / "secret.png"
    secret.write_bytes((folder / "saved_output.png").read_bytes())
    os.symlink("/etc/hostname", folder / "linked.png")
    os.symlink(secret, folder / "outside.png")
    os.symlink(folder / "saved_output.png", folder / "inner_link.png")  # a link, even inside: not the dump's own
    (folder / "sglang.log").rename(folder / "real.log")
    os.symlink("/etc/passwd", folder / "sglang.log")
    found = look_beside(folder / "perf_dump.json")
    assert found.outputs == [folder / "saved_output.png"]
    assert found.log == folder / "real.log"

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = ingest(found, TrackingConfig(uri=uri))
    paths = artifact_paths(MlflowClient(tracking_uri=uri), run_id)
    assert "outputs/saved_output.png" in paths and "real.log" in paths
    assert not any(name in p for p in paths for name in ("linked", "outside", "inner_link", "sglang.log"))


def test_files_beside_the_dump_that_are_not_outputs_are_not_attached(tmp_path):
    folder = _folder(tmp_path)
    (folder / "notes.txt").write_text("private")
    (folder / "key.pem").write_text("private")
    found = look_beside(folder / "perf_dump.json")
    assert found.outputs == [folder / "saved_output.png"]


def test_a_tag_without_a_value_is_a_usage_error(tmp_path):
    folder = _folder(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "diffexp.ingest", str(folder), "--tracking-uri", uri, "--tag", "novalue"],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "expected KEY=VALUE" in proc.stderr and "Traceback" not in proc.stderr
