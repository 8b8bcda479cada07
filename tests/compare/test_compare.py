"""`python -m diffexp.compare` on recorded perf dumps (against SGLang's compare_perf.py output on the same
files), on MLflow runs with each correctness verdict, and on two sweeps point by point."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from diffexp.compare import compare, read_perf_dump, side_from_dump
from diffexp.compare.__main__ import main
from diffexp.compare.rules import SGLANG_E2E_EMOJI, SGLANG_STAGE_EMOJI

FIXTURES = Path(__file__).parent / "fixtures"
DUMPS = FIXTURES / "perf_dumps"
RECORDED = FIXTURES / "compare_perf"  # compare_perf.py (sglang 0.5.23) output on the same dumps
PAIRS = sorted(p.stem.split("__") for p in RECORDED.glob("*__*.md"))

_ROW = re.compile(r"^\| (.+?) \| ([-\d.]+) \| ([-\d.]+) \| ([-+\d.]+) \| ([-+\d.]+)% \| (\S+) \|$")
_E2E = re.compile(
    r"^\| \*\*E2E Latency\*\* \| ([\d.]+) ms \| ([\d.]+) ms \| \*\*([-+\d.]+) ms \(([-+\d.]+)%\)\*\* \| (\S+) \|$"
)


def parse_compare_perf(text: str) -> dict[str, tuple]:
    """compare_perf.py's single-comparison markdown → {row: (base, new, diff, pct, status)} as printed."""
    rows = {}
    for line in text.splitlines():
        if m := _E2E.match(line):
            rows["E2E Latency"] = m.groups()
        elif (m := _ROW.match(line)) and m.group(1) != "Stage Name":
            name = re.sub(r" \((\d+->)?\d+ steps\)$", "", m.group(1))
            rows[name] = m.groups()[1:]
    return rows


def ours_as_printed(base, cand) -> dict[str, tuple]:
    """Our sglang-rule rows, formatted as compare_perf.py prints them. base/cand: a fixture name or a path."""
    path = lambda p: p if isinstance(p, Path) else DUMPS / f"{p}.json"  # noqa: E731
    c = compare(
        side_from_dump(read_perf_dump(path(base)), "sglang"),
        side_from_dump(read_perf_dump(path(cand)), "sglang"),
        "sglang",
    )
    out = {}
    for r in c.rows:
        emoji = (SGLANG_E2E_EMOJI if r.kind == "e2e" else SGLANG_STAGE_EMOJI)[r.speed]
        out[r.name] = (f"{r.base:.2f}", f"{r.new:.2f}", f"{r.diff:+.2f}", f"{r.pct:+.1f}", emoji)
    return out


def test_recorded_pairs_exist():
    assert len(PAIRS) >= 4


@pytest.mark.parametrize("base,cand", PAIRS, ids=["__".join(p) for p in PAIRS])
def test_agrees_with_recorded_compare_perf_output(base, cand):
    theirs = parse_compare_perf((RECORDED / f"{base}__{cand}.md").read_text())
    ours = ours_as_printed(base, cand)
    assert list(ours) == list(theirs)  # same rows, same order (E2E first, then the stages)
    assert ours == theirs


# Real SGLang 0.5.23 CPU runs and compare_perf.py's own output on them, recorded by the SGLang engine's tests.
REAL = Path(__file__).parents[1] / "fixtures" / "sglang"
_MULTI_CELL = re.compile(r"^([\d.]+)(?: ms)? \(([-+\d.]+)%\) (\S+)$")


@pytest.mark.skipif(not (REAL / "compare_perf_output.txt").is_file(), reason="no recorded SGLang runs")
def test_agrees_with_compare_perf_on_real_sglang_dumps():
    theirs = parse_compare_perf((REAL / "compare_perf_output.txt").read_text())
    ours = ours_as_printed(REAL / "compare_perf" / "baseline.json", REAL / "compare_perf" / "new.json")
    assert list(ours) == list(theirs) and ours == theirs


@pytest.mark.skipif(not (REAL / "compare_perf_output_multi.txt").is_file(), reason="no recorded SGLang runs")
def test_agrees_with_compare_perf_multi_report_column_by_column():
    lines = (REAL / "compare_perf_output_multi.txt").read_text().splitlines()
    labels = [c.strip() for c in next(line for line in lines if line.startswith("| Metric")).strip("|").split("|")][2:]
    ours = {
        label: ours_as_printed(REAL / "compare_perf" / "baseline.json", REAL / "compare_perf" / label)
        for label in labels
    }
    checked = 0
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 2 + len(labels) or cells[0] in ("Metric", "Stage Name") or cells[0].startswith(":"):
            continue
        name = "E2E Latency" if cells[0] == "**E2E Latency**" else cells[0]
        for label, cell in zip(labels, cells[2:]):
            value, pct, status = _MULTI_CELL.match(cell).groups()
            b, n, _, our_pct, our_status = ours[label][name]
            assert (n, our_pct.lstrip("+"), our_status) == (value, pct.lstrip("+"), status), (label, name)
            assert b == cells[1].removesuffix(" ms")
            checked += 1
    assert checked >= 2 * 10


@pytest.mark.skipif(
    importlib.util.find_spec("sglang") is None, reason="sglang not installed: checked against the recorded output"
)
@pytest.mark.parametrize("base,cand", PAIRS, ids=["__".join(p) for p in PAIRS])
def test_agrees_with_compare_perf_run_live(base, cand):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sglang.multimodal_gen.benchmarks.compare_perf",
            str(DUMPS / f"{base}.json"),
            str(DUMPS / f"{cand}.json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ours_as_printed(base, cand) == parse_compare_perf(out)


@pytest.mark.parametrize(
    "cand,rule,exit_code,verdict",
    [
        ("flux_faster", "guide", 0, "FASTER, NOT AN IMPROVEMENT"),  # a perf dump has no correctness review
        ("flux_faster", "sglang", 0, "FASTER, NOT AN IMPROVEMENT"),
        ("flux_slower", "guide", 1, "REGRESSION: Denoise ★ +3.3%"),  # > 2 %: the guide's rule
        ("flux_slower", "sglang", 1, "REGRESSION: E2E Latency +4.8%, TextEncodingStage +316.6%"),  # denoise within 10 %
        ("flux_noise", "guide", 0, "NO REGRESSION"),  # +1.5 %
        ("flux_noise", "sglang", 0, "NO REGRESSION"),
    ],
)
def test_verdicts_and_exit_codes_on_perf_dumps(cand, rule, exit_code, verdict, tmp_path, capsys):
    md = tmp_path / "report.md"
    assert (
        main([str(DUMPS / "flux_base.json"), str(DUMPS / f"{cand}.json"), "--rule", rule, "--markdown", str(md)])
        == exit_code
    )
    text = md.read_text()
    assert f"**{verdict}" in text
    assert "| Stage | Baseline | Candidate | Δ | Δ % | Verdict |" in text
    assert "correctness unchecked" in text
    if "FASTER" in verdict:  # faster rows are shown, but never called an improvement without a passed review
        assert "🟢 faster, not an improvement (correctness unchecked)" in text and "🟢 improvement" not in text


def test_denoising_loop_grouping_and_stage_missing_on_one_side(capsys, tmp_path):
    pair = [str(DUMPS / "wan_legacy_base.json"), str(DUMPS / "wan_legacy_fewer_steps.json"), "--rule", "guide"]
    assert main(pair) == 2  # 40 against 30 steps: not the same work
    assert "not the same work: steps: 40 → 30" in capsys.readouterr().err
    md = tmp_path / "report.md"
    assert main([*pair, "--allow-different-work", "--markdown", str(md)]) == 0
    out = md.read_text()
    assert "NOT THE SAME WORK (--allow-different-work): steps: 40 → 30" in out
    c = compare(
        side_from_dump(read_perf_dump(DUMPS / "wan_legacy_base.json"), "guide"),
        side_from_dump(read_perf_dump(DUMPS / "wan_legacy_fewer_steps.json"), "guide"),
        "guide",
    )
    rows = {r.name: r for r in c.rows}
    assert rows["Denoising Loop"].note == "(40->30 steps)"
    assert rows["Denoise ★"].base == 12000.0 and rows["Denoise ★"].speed == "improvement"
    assert rows["ImageEncodingStage"].speed is None  # guide: only in the candidate, no verdict
    assert rows["ImageEncodingStage"].only_in == "candidate"
    assert c.row_verdict(rows["ImageEncodingStage"]) == "new stage (only in the candidate)"
    line = next(x for x in out.splitlines() if "ImageEncodingStage" in x)
    assert "| new |" in line and "+0.0" not in line and "95.00 ms" in line  # shown with its time, not as +0.0 %


def test_exit_status_of_the_real_command(capsys):
    proc = subprocess.run(
        [sys.executable, "-m", "diffexp.compare", str(DUMPS / "flux_base.json"), str(DUMPS / "flux_slower.json")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "REGRESSION" in proc.stdout
    assert main(["missing.json", str(DUMPS / "flux_base.json")]) == 2
    assert "no such perf dump" in capsys.readouterr().err


# --- MLflow runs and sweeps, written to a real store through diffexp's own recorder ---------------


def _log_run(
    uri: str, experiment: str, name: str, denoise_s: float, correctness: str | None, tags=None, parent=None
) -> str:
    from diffexp.results import RunResult
    from diffexp.tracking.writer import RunRecorder

    result = RunResult(
        denoise_s=denoise_s,
        denoise_step_ms=[denoise_s * 250] * 4,
        text_encode_s=0.2,
        vae_decode_s=0.5,
        e2e_s=denoise_s + 0.8,
        peak_mem_gib=20.0,
        stages_s={"text_encode": 0.2, "vae_decode": 0.5, "load": 30.0},
    )
    all_tags = {"model": "flux1_dev", "valid": "true", **(tags or {})}
    if correctness:
        all_tags["correctness"] = correctness
    with RunRecorder(uri, experiment, name, {"model.name": "flux1_dev"}, all_tags, parent_run_id=parent) as rec:
        rec.log_result(result)
    return rec.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('compare') / 'mlflow.db'}"


@pytest.mark.parametrize(
    "correctness,exit_code,verdict",
    [
        ("pass", 0, "IMPROVEMENT: Denoise ★ -10.0%"),
        (None, 0, "FASTER, NOT AN IMPROVEMENT: correctness is unchecked"),
        ("unchecked", 0, "FASTER, NOT AN IMPROVEMENT: correctness is unchecked"),
        ("fail", 1, "FAIL: the candidate's output failed the correctness review"),
    ],
)
def test_correctness_gates_an_improvement(correctness, exit_code, verdict, store, tmp_path, capsys):
    uri = store
    base = _log_run(uri, "cmp", "base", 10.0, "pass")
    cand = _log_run(uri, "cmp", "cand", 9.0, correctness)
    md = tmp_path / "pr.md"
    assert main([base, cand, "--tracking-uri", uri, "--markdown", str(md)]) == exit_code
    text = md.read_text()
    assert f"**{verdict}" in text
    assert f"correctness {correctness or 'unchecked'}" in text
    row = next(line for line in text.splitlines() if line.startswith("| Denoise ★"))
    assert "10000.00 ms | 9000.00 ms | -1000.00 | -10.0%" in row
    assert ("🟢 improvement" in row) == (correctness == "pass")
    assert "load (info)" in text  # model load is shown, never gating


def test_sweeps_are_compared_point_by_point(store, tmp_path, capsys):
    from diffexp.tracking.writer import RunRecorder

    uri = store
    parents = []
    for name, slowdown in (("before", 1.0), ("after", 1.05)):
        with RunRecorder(uri, "sweep-demo", name, {}, {"sweep": "demo", "sweep.role": "parent"}) as parent:
            for i, backend in enumerate(("fa", "torch_sdpa", "sage_attn" if name == "before" else "sage_attn_3")):
                tags = {"sweep.point": str(i), "sweep.overrides": json.dumps([f"attention={backend}"])}
                denoise = (10.0 + i) * (slowdown if backend == "torch_sdpa" else 1.0)
                _log_run(uri, "sweep-demo", f"{name}{i}", denoise, "pass", tags, parent=parent.run_id)
        parents.append(parent.run_id)
    md = tmp_path / "sweeps.md"
    assert main([parents[0], "after", "--tracking-uri", uri, "--markdown", str(md)]) == 1  # "after" by run name
    text = md.read_text()
    assert text.count("#### #") == 2  # fa and torch_sdpa matched; sage_attn / sage_attn_3 are not
    assert "REGRESSION: Denoise ★ +5.0%" in text
    assert "Points in only one sweep (not compared)" in text and "sage_attn_3" in text


# --- input compare cannot judge: exit status 2 with a message, never a traceback ---------------------
BROKEN_DUMPS = {
    # name: (how the real recorded dump is broken, the message)
    "null_total": (lambda d: d.update(total_duration_ms=None), "total_duration_ms is None, not a duration"),
    "nan_total": (lambda d: d.update(total_duration_ms=float("nan")), "total_duration_ms is nan ms"),
    "zero_total": (lambda d: d.update(total_duration_ms=0), "total_duration_ms is 0 ms"),
    "negative_stage": (lambda d: d["steps"][4].update(duration_ms=-1.5), "stage 'DenoisingStage' duration_ms is -1.5"),
    "null_stage": (lambda d: d["steps"][1].update(duration_ms=None), "stage 'TextEncodingStage' duration_ms is None"),
    "nan_step": (lambda d: d["denoise_steps_ms"][2].update(duration_ms=float("nan")), "denoise step 2"),
    "no_steps_key": (lambda d: d.pop("steps"), "not an SGLang perf dump (no `steps`"),
    "empty_steps": (lambda d: d.update(steps=[]), "`steps` is []: the dump records no stage"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_DUMPS))
def test_a_broken_dump_is_unusable_input_exit_2(case, tmp_path, capsys):
    """Starting from a real SGLang CPU dump, each way of breaking it exits 2 with the reason, on either side,
    under either rule; the real command prints the error, not a traceback."""
    breaks, message = BROKEN_DUMPS[case]
    data = json.loads((REAL / "compare_perf" / "baseline.json").read_text())
    breaks(data)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))  # json writes NaN as NaN, as Python's json.dump in SGLang would
    good = str(REAL / "compare_perf" / "new.json")
    for argv in ([good, str(broken)], [str(broken), good]):
        for rule in ("guide", "sglang"):
            assert main([*argv, "--rule", rule]) == 2
            err = capsys.readouterr().err
            assert message in err and err.startswith("error: ") and str(broken) in err
    proc = subprocess.run([sys.executable, "-m", "diffexp.compare", good, str(broken)], capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "field,change,expected",
    [
        ("steps", lambda d: d["denoise_steps_ms"].pop(), "steps: 4 → 3"),
        ("model", lambda d: d["meta"].update(model="/models/other"), "model: /root/.cache/diffexp/tiny/"),
        ("guidance", lambda d: d["meta"].update(guidance_scale=7.0), "guidance_scale: "),
    ],
)
def test_dumps_of_different_work_are_refused_unless_allowed(field, change, expected, tmp_path, capsys):
    base = REAL / "compare_perf" / "baseline.json"
    data = json.loads(base.read_text())
    change(data)
    if field == "guidance":  # 0.5.23 writes no sampling fields in meta; a later dump that does is compared on them
        base_data = json.loads(base.read_text())
        base_data["meta"]["guidance_scale"] = 3.5
        base = tmp_path / "base.json"
        base.write_text(json.dumps(base_data))
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    assert main([str(base), str(other)]) == 2
    err = capsys.readouterr().err
    assert "not the same work" in err and expected in err and "--allow-different-work" in err
    assert main([str(base), str(other), "--allow-different-work"]) in (0, 1)
    assert "NOT THE SAME WORK" in capsys.readouterr().out


def test_a_regression_stays_exit_1_and_a_same_work_pair_is_compared():
    pair = [str(REAL / "compare_perf" / "baseline.json"), str(REAL / "compare_perf" / "new.json")]
    assert main([*pair, "--rule", "sglang"]) == 0  # the real pair: E2E -16 %, no stage slower
    assert main([str(DUMPS / "flux_base.json"), str(DUMPS / "flux_slower.json")]) == 1


def test_a_killed_or_invalid_run_is_unusable_input_not_a_pass(store, capsys):
    """A KILLED run with no metrics (even of another model) used to pass as a candidate with exit 0."""
    from diffexp.tracking.writer import RunRecorder

    base = _log_run(store, "unusable", "base", 2.0, "pass")
    try:
        with RunRecorder(store, "unusable", "killed", {"model.name": "qwen_image"}, {"model": "qwen_image"}) as rec:
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    from diffexp.results import RunResult

    with RunRecorder(store, "unusable", "invalid", {"model.name": "flux1_dev"}, {"model": "flux1_dev"}) as bad:
        bad.log_result(RunResult(denoise_s=1.0, valid=False, invalid_reason="fell back to the diffusers backend"))
    invalid = bad.run_id
    for candidate, why in (
        (rec.run_id, "its status is KILLED; it has no denoise_s"),
        (invalid, "marked invalid (fell back to the diffusers backend)"),
    ):
        assert main([base, candidate, "--tracking-uri", store]) == 2
        err = capsys.readouterr().err
        assert f"run {candidate}" in err and why in err and "cannot be compared" in err
