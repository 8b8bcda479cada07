"""`python -m diffexp.report sweep=<parent run id | run name | sweep name>` rebuilds a sweep's summary and
charts from MLflow; `python -m diffexp.report suite` prints the guide's standard-suite table (latest
valid run per model and GPU) as markdown.

Options, Hydra-style: `tracking.uri=URI` (default $MLFLOW_TRACKING_URI, else ./mlruns/mlflow.db),
`out=DIR` (sweep: where the files go, default reports/<parent run id>), `all=true` (suite: every
model, not only the guide's seven).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from diffexp.errors import DiffexpError
from diffexp.sweeps.queries import RecordedRun, find_parent, search
from diffexp.sweeps.summary import GUIDE_COLUMNS, MISSING, guide_row, markdown_table, resolution, rounded
from diffexp.tracking_queries import client_for_uri

# The guide's standard benchmark suite, in its table's order.
SUITE_MODELS = ("qwen_image", "qwen_image_edit", "flux1_dev", "flux2_dev", "zimage_turbo", "wan22_t2v", "wan22_ti2v")
USAGE = (
    "usage: python -m diffexp.report sweep=<parent run id|run name|sweep name> [out=DIR] [tracking.uri=URI]\n"
    "       python -m diffexp.report suite [all=true] [tracking.uri=URI]"
)


def rebuild_sweep(ref: str, out: Optional[Path] = None, uri: Optional[str] = None):
    """The sweep's report files, rebuilt from MLflow into `out`; equal to the ones logged when it ended."""
    from diffexp.sweeps.artifacts import write_sweep_report

    store = client_for_uri(uri)
    parent = find_parent(store, ref)
    return write_sweep_report(store, parent, out or Path("reports") / parent.run_id)


def suite_runs(uri: Optional[str] = None) -> list[RecordedRun]:
    """FINISHED, valid, unprofiled runs (sweep points included, sweep parents not), newest first."""
    found = search(client_for_uri(uri), "attributes.status = 'FINISHED' and tags.valid = 'true'")
    return [r for r in found if r.tags.get("profiled") != "true" and r.tags.get("sweep.role") != "parent"]


def _model_defaults(model: str) -> dict[str, str]:
    """A suite model's label, task and sampling from conf/model/, for the row of a model with no run yet."""
    from omegaconf import OmegaConf

    from diffexp.config import CONF_DIR
    from diffexp.tracking import flatten

    node = OmegaConf.load(CONF_DIR / "model" / f"{model}.yaml")
    node.pop("defaults", None)
    return {f"model.{k}": v for k, v in flatten(OmegaConf.to_container(node, resolve=False)).items()}


def suite_table(runs: Sequence[RecordedRun], every_model: bool = False) -> str:
    """One row per (model, GPU): the newest run; the guide's seven models always listed, '-' where none ran."""
    latest: dict[tuple[str, str], dict[str, str]] = {}
    for run in runs:  # newest first: the first seen per key wins
        row = guide_row(run)
        latest.setdefault((run.params.get("model.name", MISSING), row["GPU"]), row)
    models = list(SUITE_MODELS)
    if every_model:
        models += sorted({m for m, _ in latest} - set(SUITE_MODELS))
    rows = []
    for model in models:
        found = [row for (m, _), row in sorted(latest.items()) if m == model]
        if found:
            rows += found
        elif model in SUITE_MODELS:
            params = _model_defaults(model)
            steps = params.get("model.sampling.num_inference_steps", "None")
            rows.append(
                {
                    **{c: MISSING for c in GUIDE_COLUMNS},
                    "Model": params.get("model.label", model),
                    "Task": params.get("model.task_label", MISSING),
                    "Steps": steps if steps != "None" else MISSING,
                    "Resolution": resolution(params),
                }
            )
    return markdown_table(GUIDE_COLUMNS, [rounded(row) for row in rows])


def _options(args: Sequence[str]) -> tuple[Optional[str], dict[str, str]]:
    command, options = None, {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key in ("sweep", "out", "tracking.uri", "all"):
            options[key] = value
        elif not sep and command is None:
            command = arg
        else:
            raise DiffexpError(f"unknown argument {arg!r}\n{USAGE}")
    if "sweep" in options:
        command = command or "sweep"
    return command, options


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        command, options = _options(sys.argv[1:] if argv is None else argv)
        uri = options.get("tracking.uri")
        if command == "sweep" and options.get("sweep"):
            report = rebuild_sweep(options["sweep"], Path(options["out"]) if "out" in options else None, uri)
            print(report.summary.to_markdown())
            print(f"{report.summary.passed} passed, {report.summary.failed} failed; files in {report.files[0].parent}")
        elif command == "suite":
            print(suite_table(suite_runs(uri), options.get("all", "false").lower() == "true"), end="")
        else:
            raise DiffexpError(USAGE)
    except DiffexpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
