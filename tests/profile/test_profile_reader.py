"""The streaming reader: both parsers, block boundaries, layouts, compression, errors, and bounded memory."""

from __future__ import annotations

import gzip
import logging
import tracemalloc

import numpy as np
import pytest

from diffexp.errors import DiffexpError
from diffexp.profile import analyze_trace
from diffexp.profile.reader import read_trace


@pytest.fixture
def small_trace(trace_builder):
    b = trace_builder
    b.scope("step_ü", 0, 100)  # non-ASCII: UTF-8 sequences must survive being cut between blocks
    for i in range(40):
        b.kernel(f"kernel_λ_{i % 7}", 1000 + 10 * i, 1 + i, launch_at=1 + 2 * i)
    # A CPU op whose name spells a wanted category inside a JSON string must not be read as one.
    b.events.append(
        {"ph": "X", "cat": "cpu_op", "name": 'x", "cat": "kernel', "pid": 1, "tid": 10, "ts": 50, "dur": 1, "args": {}}
    )
    return b


def columns(events):
    return {
        name: getattr(events, name)
        for name in (
            "gpu_name_id",
            "gpu_start_us",
            "gpu_dur_us",
            "gpu_correlation",
            "gpu_device",
            "gpu_stream",
            "launch_thread",
            "launch_start_us",
            "launch_correlation",
            "scope_start_us",
            "scope_end_us",
        )
    }


def assert_same(left, right):
    assert left.gpu_names == right.gpu_names and left.scope_names == right.scope_names
    for name, values in columns(left).items():
        assert np.array_equal(values, getattr(right, name)), name


@pytest.mark.parametrize("block_bytes", [7, 64, 1000, 1 << 20])
def test_fast_parser_is_independent_of_block_boundaries(small_trace, tmp_path, block_bytes):
    path = small_trace.write(tmp_path / "t.json")
    reference, _ = read_trace(path, parser="ijson")
    events, stats = read_trace(path, parser="fast", block_bytes=block_bytes)
    assert stats.parser == "fast"
    assert_same(events, reference)
    assert len(events.gpu_start_us) == 40 and events.scope_names == ("step_ü",)
    assert set(events.gpu_names) == {f"kernel_λ_{i}" for i in range(7)}


def test_other_layouts_fall_back_to_ijson_with_the_same_result(small_trace, tmp_path, caplog):
    reference, _ = read_trace(small_trace.write(tmp_path / "lines.json"), parser="ijson")
    odd = small_trace.write(tmp_path / "args_first.json", layout="args_first")
    with caplog.at_level(logging.WARNING):
        events, stats = read_trace(odd)
    assert stats.parser == "ijson"
    assert "re-reading with ijson" in caplog.text
    assert_same(events, reference)
    with pytest.raises(DiffexpError, match="fast parser cannot read"):
        read_trace(odd, parser="fast")


@pytest.mark.parametrize("parser", ["fast", "ijson"])
def test_bare_array_form_and_gzip_detected_by_content(small_trace, tmp_path, parser):
    reference, _ = read_trace(small_trace.write(tmp_path / "ref.json"), parser="ijson")
    bare, _ = read_trace(small_trace.write(tmp_path / "bare.json", layout="array"), parser=parser)
    assert_same(bare, reference)
    # gzip is recognised by its magic bytes, whatever the file is called.
    packed, stats = read_trace(small_trace.write(tmp_path / "packed.json", gz=True), parser=parser)
    assert_same(packed, reference)
    assert stats.raw_bytes == (tmp_path / "ref.json").stat().st_size


def test_unreadable_traces_are_user_errors(small_trace, tmp_path):
    whole = small_trace.write(tmp_path / "whole.json").read_bytes()
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DiffexpError, match="not a readable Chrome trace"):
        read_trace(truncated)
    # Cut just after an event's closing brace: every remaining event looks complete.
    cut_at_brace = tmp_path / "cut_at_brace.json"
    cut_at_brace.write_bytes(whole[: whole.index(b"}}", len(whole) // 2) + 1])
    with pytest.raises(DiffexpError, match="not a readable Chrome trace"):
        read_trace(cut_at_brace)
    broken_gzip = tmp_path / "broken.json.gz"
    broken_gzip.write_bytes(gzip.compress(whole)[:-40])
    with pytest.raises(DiffexpError, match="not a readable Chrome trace"):
        read_trace(broken_gzip)
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    with pytest.raises(DiffexpError):
        read_trace(empty)
    with pytest.raises(DiffexpError, match="expected one of"):
        read_trace(tmp_path / "whole.json", parser="simdjson")  # type: ignore[arg-type]


def test_progress_reports_bytes_on_disk(small_trace, tmp_path):
    path = small_trace.write(tmp_path / "t.json.gz", gz=True)
    seen: list[tuple[int, int]] = []
    read_trace(path, progress=lambda done, total: seen.append((done, total)), block_bytes=256)
    assert len(seen) > 1
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


@pytest.mark.parametrize("parser", ["fast", "ijson"])
def test_reading_streams_instead_of_loading_the_file(fixture_trace, tmp_path, parser):
    """Peak Python allocations while reading the 15 MB fixture stay far below the file (json.load needs ~10x it)."""
    plain = tmp_path / "fixture.json"
    plain.write_bytes(gzip.decompress(fixture_trace.read_bytes()))
    tracemalloc.start()
    try:
        events, _ = read_trace(plain, parser=parser)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(events.gpu_start_us) == 6312
    size = plain.stat().st_size
    assert peak_bytes < size / 2, f"{peak_bytes / 1e6:.1f} MB peak for a {size / 1e6:.1f} MB file"


def test_a_trace_written_by_this_torch_is_read_by_the_fast_parser(tmp_path):
    """torch's own writer (CPU-only here): the fast path must accept its layout and its end without falling back."""
    torch = pytest.importorskip("torch")
    from torch.profiler import ProfilerActivity, profile, record_function

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for step in range(2):
            with record_function(f"denoise_step_{step}"), record_function("transformer_blocks.0.attn"):
                torch.ones(64, 64) @ torch.ones(64, 64)
    path = tmp_path / "cpu.trace.json"
    prof.export_chrome_trace(str(path))
    events, stats = read_trace(path, parser="fast")
    assert stats.parser == "fast"
    names = [events.scope_names[i] for i in events.scope_name_id]
    assert names.count("transformer_blocks.0.attn") == 2
    assert {"denoise_step_0", "denoise_step_1"} <= set(names)
    assert len(events.gpu_start_us) == 0
    with pytest.raises(DiffexpError, match="no GPU kernels"):
        analyze_trace(path)
