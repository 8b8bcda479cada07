"""nsys: the command prefix, and the category breakdown read from Nsight's SQLite export schema."""

from __future__ import annotations

import sqlite3
import sys

import pytest

from diffexp.engines.nsys import nsys_prefix
from diffexp.errors import DiffexpError
from diffexp.profile.nsys import CPU_CATEGORY, category_breakdown, read_activities, write_breakdown


def make_export(path, kernels, memcpys=()):
    """A database with the tables and columns `nsys export --type sqlite` writes (the subset we read)."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE StringIds (id INTEGER PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        "CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER NOT NULL,"
        " streamId INTEGER NOT NULL, correlationId INTEGER, shortName INTEGER NOT NULL, demangledName INTEGER)"
    )
    db.execute(
        "CREATE TABLE CUPTI_ACTIVITY_KIND_MEMCPY (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER NOT NULL, copyKind INTEGER, bytes INTEGER)"
    )
    for i, (name, start, end) in enumerate(kernels):
        db.execute("INSERT INTO StringIds VALUES (?, ?)", (2 * i, name.split("<")[0]))
        db.execute("INSERT INTO StringIds VALUES (?, ?)", (2 * i + 1, name))
        db.execute(
            "INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (?, ?, 0, 7, ?, ?, ?)", (start, end, i, 2 * i, 2 * i + 1)
        )
    for start, end in memcpys:
        db.execute("INSERT INTO CUPTI_ACTIVITY_KIND_MEMCPY VALUES (?, ?, 0, 1, 1024)", (start, end))
    db.commit()
    db.close()


def test_prefix_traces_cuda_and_forks_and_skips_warmup(tmp_path):
    prefix = nsys_prefix(tmp_path / "flux", delay_s=120, duration_s=60)
    assert prefix[:4] == ["nsys", "profile", "-t", "cuda"]
    assert "--trace-fork-before-exec=true" in prefix
    assert prefix[prefix.index("--delay") + 1] == "120" and prefix[prefix.index("--duration") + 1] == "60"


def test_breakdown_by_category_with_cpu_time_from_unprofiled_elapsed(tmp_path):
    db = tmp_path / "run.sqlite"
    ms = 1_000_000
    make_export(
        db,
        kernels=[
            ("nvjet_tst_256x128_64x4_1x2_h_bz_coopA_NTT", 0, 40 * ms),
            ("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128>>", 40 * ms, 70 * ms),
            (
                "void at::native::vectorized_elementwise_kernel<4, at::native::(anonymous namespace)::silu_kernel>",
                70 * ms,
                75 * ms,
            ),
            ("triton_poi_fused_add_mul_0", 75 * ms, 80 * ms),
        ],
        memcpys=[(80 * ms, 82 * ms)],
    )
    activities = read_activities(db)
    assert len(activities) == 5 and set(activities["trace_category"]) == {"kernel", "gpu_memcpy"}
    table = category_breakdown(activities, elapsed_nonprofiled_s=0.1).set_index("category")["elapsed_s"]
    assert table["gemm"] == pytest.approx(0.040)
    assert table["attn"] == pytest.approx(0.030)
    assert table["activation"] == pytest.approx(0.005)
    assert table["triton_kernel"] == pytest.approx(0.005)
    assert table[CPU_CATEGORY] == pytest.approx(0.1 - 0.082)
    assert sum(table) == pytest.approx(0.1)
    paths = write_breakdown(category_breakdown(activities), tmp_path / "out")
    assert all(p.is_file() for p in paths)
    assert "gemm" in (tmp_path / "out" / "nsys_categories.md").read_text()


def test_breakdown_without_plotly_keeps_the_tables(tmp_path, monkeypatch):
    db = tmp_path / "run.sqlite"
    make_export(db, kernels=[("nvjet_sm90_tst_192x192", 0, 20_000_000)])
    monkeypatch.setitem(sys.modules, "plotly", None)  # a GPU box has no plotly: importing it fails
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    paths = write_breakdown(category_breakdown(read_activities(db)), tmp_path / "out")
    assert [p.name for p in paths] == ["nsys_categories.csv", "nsys_categories.md"]
    assert "gemm" in paths[1].read_text() and not (tmp_path / "out" / "nsys_categories.html").exists()


def test_missing_or_empty_export_is_a_clear_error(tmp_path):
    with pytest.raises(DiffexpError, match="no such nsys SQLite export"):
        read_activities(tmp_path / "absent.sqlite")
    make_export(tmp_path / "empty.sqlite", kernels=[])
    with pytest.raises(DiffexpError, match="no CUDA kernels"):
        read_activities(tmp_path / "empty.sqlite")
