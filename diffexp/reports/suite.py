"""The guide's standard-suite table ("Result Recording Format") from MLflow: the newest valid run per model and GPU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from diffexp import names
from diffexp.reports import published
from diffexp.reports.summary import (
    GUIDE_COLUMNS,
    MISSING,
    guide_row,
    markdown_table,
    resolution,
    rounded,
    what_ran_notes,
)
from diffexp.tracking.records import RecordedRun, parse_point_overrides, search
from diffexp.tracking.store import client_for

# The guide's standard benchmark suite, in its table's order.
SUITE_MODELS = ("qwen_image", "qwen_image_edit", "flux1_dev", "flux2_dev", "zimage_turbo", "wan22_t2v", "wan22_ti2v")
INTERVAL_COLUMN = "Denoise 95 % interval"
FLOOR_COLUMN = "Floor (ms), efficiency"
# The guide's columns; the headline's interval over the repeats and the compute floor of its step
# (measure.floor=true), where the run has them; then SGLang's published figure for the model on an H200.
SUITE_COLUMNS = [*GUIDE_COLUMNS, INTERVAL_COLUMN, FLOOR_COLUMN, published.COLUMN]


def _interval(run: RecordedRun) -> str:
    """The denoise loop's 95 % interval over the run's repeats; a single shot says its noise is unknown."""
    n, low, high = (run.metrics.get(f"denoise_s.{k}") for k in ("n", "ci95_low", "ci95_high"))
    if n is None or n < 2 or low is None or high is None:
        return "single shot: noise unknown" if run.result.denoise_s is not None else MISSING
    return f"[{low:.3f}, {high:.3f}] (n={int(n)})"


def _floor(run: RecordedRun) -> str:
    floor_ms, efficiency = run.metrics.get("floor.ms"), run.metrics.get("floor.efficiency")
    if floor_ms is None or efficiency is None:
        return MISSING
    return f"{floor_ms:.1f}, {100 * efficiency:.1f} %"


def suite_runs(uri: Optional[str] = None) -> list[RecordedRun]:
    """FINISHED, valid, unprofiled runs (sweep points included, sweep parents not), newest first."""
    found = search(client_for(uri), f"attributes.status = 'FINISHED' and tags.{names.VALID} = 'true'")
    return [r for r in found if r.tags.get(names.PROFILED) != "true" and r.tags.get(names.SWEEP_ROLE) != "parent"]


# What a recipe fixes that a run may have changed to fit one GPU or one call (fewer steps, one GPU for an 8-GPU recipe).
RECIPE_KEYS = (
    "parallel.num_gpus",
    "model.sampling.num_inference_steps",
    "model.sampling.width",
    "model.sampling.height",
    "model.sampling.resolution",
    "model.sampling.num_frames",
)


def recipe_departures(run: RecordedRun) -> list[str]:
    """Where a run of a recipe (`+recipe=NAME`, a sweep point or a single run) ran otherwise than its recipe says:
    each key, its value and the recipe's, so a single-GPU or fewer-step measurement is never read as the recipe's
    figure."""
    recipe = parse_point_overrides(run.tags.get(names.SWEEP_OVERRIDES)).get("+recipe")
    if not recipe and run.params.get("recipe") not in (None, "None"):
        recipe = run.params["recipe"]  # a single run of a recipe: its config says which
    if not recipe:
        return []
    from omegaconf import OmegaConf

    from diffexp.config import compose

    try:
        asked = compose([f"+recipe={recipe}"])
    except Exception as exc:  # a recipe renamed or removed since the run: say so, do not guess
        return [f"recipe {recipe!r} cannot be composed now ({type(exc).__name__}); departures not checked"]
    out = []
    for key in RECIPE_KEYS:
        want, ran = str(OmegaConf.select(asked, key)), run.params.get(key)
        if ran is not None and ran != want:
            out.append(f"{key}={ran} where recipe {recipe} has {want}")
    return out


def _model_defaults(model: str) -> dict[str, str]:
    """A suite model's label, task and sampling from conf/model/, for the row of a model with no run yet."""
    from omegaconf import OmegaConf

    from diffexp.config import CONF_DIR
    from diffexp.tracking.params import flatten

    node = OmegaConf.load(CONF_DIR / "model" / f"{model}.yaml")
    node.pop("defaults", None)
    return {f"model.{k}": v for k, v in flatten(OmegaConf.to_container(node, resolve=False)).items()}


def suite_table(runs: Sequence[RecordedRun], every_model: bool = False) -> str:
    """One row per (model, GPU): the newest run; the guide's seven models always listed, '-' where none ran."""
    latest: dict[tuple[str, str], dict[str, str]] = {}
    notes: list[str] = []
    for run in runs:  # newest first: the first seen per key wins
        row = guide_row(run)
        key = (run.params.get("model.name", MISSING), row["GPU"])
        if key not in latest:
            latest[key] = {**rounded(row), INTERVAL_COLUMN: _interval(run), FLOOR_COLUMN: _floor(run)}
            notes += [f"{row['Model']} ({row['GPU']}): {note}" for note in what_ran_notes(run)]
            departures = recipe_departures(run)
            if departures:
                notes.append(f"{row['Model']} ({row['GPU']}): NOT THE RECIPE AS WRITTEN: " + "; ".join(departures))
    models = list(SUITE_MODELS)
    if every_model:
        models += sorted({m for m, _ in latest} - set(SUITE_MODELS))
    rows = []
    marks: dict[str, int] = {}
    for model in models:
        found = [row for (m, _), row in sorted(latest.items()) if m == model]
        if not found and model in SUITE_MODELS:
            params = _model_defaults(model)
            steps = params.get("model.sampling.num_inference_steps", "None")
            found = [
                {
                    **{c: MISSING for c in SUITE_COLUMNS},
                    "Model": params.get("model.label", model),
                    "Task": params.get("model.task_label", MISSING),
                    "Steps": steps if steps != "None" else MISSING,
                    "Resolution": resolution(params),
                }
            ]
        rows += [{**row, published.COLUMN: published.cell(model, marks)} for row in found]
    notes = published.footnotes(marks) + notes
    return markdown_table(SUITE_COLUMNS, rows) + "".join(f"\n> {n}\n" for n in notes)
