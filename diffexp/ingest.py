"""`python -m diffexp.ingest PATH…`: log SGLang perf dumps made outside diffexp (a plain
`sglang generate --perf-dump-path …`, a nightly job) as MLflow runs, with the console log, outputs
and profiler traces found beside each dump, so their numbers land in the same store."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from diffexp import rundir
from diffexp.config.schema import TrackingConfig
from diffexp.engines.sglang import harvest
from diffexp.engines.sglang.engine import OUTPUT_SUFFIXES
from diffexp.engines.sglang.perf_dump import read_perf_dump
from diffexp.errors import DiffexpError

log = logging.getLogger(__name__)

LOG_NAMES = (rundir.SGLANG_LOG, rundir.RUN_LOG, "generate.log")


@dataclass
class Found:
    """A perf dump and what sits beside it."""

    dump: Path
    log: Optional[Path] = None
    outputs: list[Path] = field(default_factory=list)
    traces: list[Path] = field(default_factory=list)


def _is_perf_dump(path: Path) -> bool:
    """Looks like a dump (has its keys); whether it is a usable one is validate_perf_dump's call, at ingest."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and "steps" in data and "total_duration_ms" in data


def _inside(path: Path, folder: Path) -> bool:
    """A plain file of the folder's own: not a link, and nothing in its resolved path leaves the folder."""
    if path.is_symlink() or not path.is_file():
        return False
    return path.resolve().is_relative_to(folder.resolve())


def find_dumps(paths: list[Path]) -> list[Path]:
    """The perf dumps named, or found (not recursively, never through a link) in the folders named."""
    dumps: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if _inside(p, path) and _is_perf_dump(p))
            if not found:
                raise DiffexpError(f"{path}: no SGLang perf dump (*.json with 'steps' and 'total_duration_ms') in it")
            dumps += found
        elif path.is_file():
            dumps.append(path)
        else:
            raise DiffexpError(f"{path}: no such file or folder")
    return dumps


def _outputs(folder: Path, named: list[str]) -> list[Path]:
    """The outputs the log says were saved, and files with output suffixes in outputs/ (else beside the dump)."""
    out_dir = folder / rundir.OUTPUTS
    candidates = list(out_dir.rglob("*") if out_dir.is_dir() and not out_dir.is_symlink() else folder.iterdir())
    candidates += [folder / Path(n).name for n in named]  # the run's own paths: found here by name, if at all
    return sorted(
        {p for p in candidates if p.suffix.lower() in OUTPUT_SUFFIXES and _inside(p, folder)},
    )


def look_beside(dump: Path) -> Found:
    """What belongs to the dump in its folder; links and anything resolving outside the folder are left out."""
    folder = dump.parent
    logs = [folder / name for name in LOG_NAMES] + sorted(folder.glob("*.log"))
    logs = [p for p in logs if _inside(p, folder)]
    named = harvest.parse_log(logs[0].read_text(errors="replace")).saved_outputs if logs else []
    trace_dir = folder / rundir.TRACES
    traces = sorted((trace_dir if trace_dir.is_dir() else folder).glob("*.trace.json.gz"))
    return Found(dump, logs[0] if logs else None, _outputs(folder, named), [t for t in traces if _inside(t, folder)])


def _text(value) -> str:
    return " | ".join(map(str, value)) if isinstance(value, list) else str(value)


def ingest(found: Found, tracking: TrackingConfig, extra_tags: Optional[dict[str, str]] = None) -> str:
    """Log one dump as an MLflow run; returns the run id. Invalid (fallback) runs end FAILED."""
    from diffexp.tracking.writer import RunRecorder

    dump = read_perf_dump(found.dump)  # the one reader: refused with the file and field named, as compare does
    figures = harvest.parse_log(found.log.read_text(errors="replace")) if found.log else harvest.LogFigures()
    explicit_baseline = any("explicitly requested" in line for line in figures.fallback_lines)
    result = harvest.build_result(dump, figures, diffusers_baseline=explicit_baseline, profiled=bool(found.traces))
    result.outputs = [str(p) for p in found.outputs]
    result.artifacts = {"perf_dump": str(found.dump), **({"sglang_log": str(found.log)} if found.log else {})}
    model = str(dump.meta.get("model") or "unknown").rstrip("/")
    params = {"model.path": model, "prompt": _text(dump.meta.get("prompt", ""))[:6000], "source": str(found.dump)}
    tags = {
        "engine": "sglang",
        "ingested": "true",
        "ingested_from": str(found.dump),
        "model": Path(model).name,
        **({"sglang.request_id": dump.request_id} if dump.request_id else {}),
        **({"sglang.dump_tag": dump.tag} if dump.tag else {}),
        **(extra_tags or {}),
    }
    recorder = RunRecorder(
        tracking.uri,
        experiment=tracking.experiment or Path(model).name or "ingested",
        run_name=tracking.run_name or f"{Path(model).name} · {found.dump.stem}",
        params=params,
        tags=tags,
    )
    with recorder:
        recorder.log_result(result)
        for trace in found.traces:
            recorder.log_artifact(trace, rundir.TRACES)
        if not result.valid:  # log_result marked the run FAILED
            log.error("%s: not a valid SGLang number: %s", found.dump, result.invalid_reason)
    return recorder.run_id


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="perf dump JSON files, or folders holding them")
    parser.add_argument("--tracking-uri", default=None, help="default: the local store ./mlruns/mlflow.db")
    parser.add_argument("--experiment", default=None, help="default: the model's name from the dump's meta")
    parser.add_argument("--tag", action="append", default=[], help="KEY=VALUE, repeatable")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    tracking = TrackingConfig(uri=args.tracking_uri, experiment=args.experiment)
    bad = [t for t in args.tag if "=" not in t or not t.split("=", 1)[0]]
    if bad:
        parser.error(f"--tag {bad[0]!r}: expected KEY=VALUE")
    tags = dict(t.split("=", 1) for t in args.tag)
    try:
        dumps = find_dumps(args.paths)
        for dump in dumps:  # all refused before any is logged: a bad file never leaves half a batch behind
            read_perf_dump(dump)
        for dump in dumps:
            print(f"{dump} -> run {ingest(look_beside(dump), tracking, tags)}")
    except DiffexpError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
