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

from diffexp.config.schema import TrackingConfig
from diffexp.engines.sglang import harvest
from diffexp.engines.sglang.engine import OUTPUT_SUFFIXES
from diffexp.errors import DiffexpError

log = logging.getLogger(__name__)

LOG_NAMES = ("sglang.log", "run.log", "generate.log")


@dataclass
class Found:
    """A perf dump and what sits beside it."""

    dump: Path
    log: Optional[Path] = None
    outputs: list[Path] = field(default_factory=list)
    traces: list[Path] = field(default_factory=list)


def _is_perf_dump(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "steps" in data and "total_duration_ms" in data


def find_dumps(paths: list[Path]) -> list[Path]:
    """The perf dumps named, or found (not recursively) in the folders named."""
    dumps: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if _is_perf_dump(p))
            if not found:
                raise DiffexpError(f"{path}: no SGLang perf dump (*.json with 'steps' and 'total_duration_ms') in it")
            dumps += found
        elif path.is_file():
            dumps.append(path)
        else:
            raise DiffexpError(f"{path}: no such file or folder")
    return dumps


def look_beside(dump: Path) -> Found:
    folder = dump.parent
    logs = [folder / name for name in LOG_NAMES if (folder / name).is_file()] or sorted(folder.glob("*.log"))
    out_dir = folder / "outputs"
    candidates = out_dir.rglob("*") if out_dir.is_dir() else folder.iterdir()
    outputs = sorted(p for p in candidates if p.is_file() and p.suffix.lower() in OUTPUT_SUFFIXES)
    trace_dir = folder / "traces"
    traces = sorted((trace_dir if trace_dir.is_dir() else folder).glob("*.trace.json.gz"))
    return Found(dump, logs[0] if logs else None, outputs, traces)


def _text(value) -> str:
    return " | ".join(map(str, value)) if isinstance(value, list) else str(value)


def ingest(found: Found, tracking: TrackingConfig, extra_tags: Optional[dict[str, str]] = None) -> str:
    """Log one dump as an MLflow run; returns the run id. Invalid (fallback) runs end FAILED."""
    from diffexp.tracking.writer import RunRecorder

    dump = harvest.read_perf_dump(found.dump)
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
            recorder.log_artifact(trace, "traces")
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
    tags = dict(t.split("=", 1) for t in args.tag)
    try:
        for dump in find_dumps(args.paths):
            print(f"{dump} -> run {ingest(look_beside(dump), tracking, tags)}")
    except DiffexpError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
