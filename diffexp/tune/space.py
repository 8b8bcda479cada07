"""A search space's points: Optuna suggestions turned into run overrides (and environment), the reference point,
and how simple a point is (the tie-break)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from diffexp.tune.config import ParamSpec, TuneConfig


@dataclass(frozen=True)
class Choice:
    overrides: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


def as_choice(value: Any) -> Choice:
    """A choice is a list of overrides, or {overrides: [...], env: {NAME: value}}."""
    if isinstance(value, dict):
        return Choice(
            tuple(value.get("overrides", ())), tuple(sorted((k, str(v)) for k, v in value.get("env", {}).items()))
        )
    return Choice(tuple(value or ()))


@dataclass
class Point:
    """One configuration: its param values, the overrides and environment they make, how complex it is."""

    params: dict[str, Any]
    overrides: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # Departures from the reference: params not at their first (simplest) choice, and numeric values. The
    # tie-break prefers fewer (fewer offloads, no compile, default kernels).
    complexity: int = 0
    lossy: bool = False

    @property
    def key(self) -> str:
        return json.dumps(self.params, sort_keys=True)


def active(cfg: TuneConfig, num_gpus: int, cuda: bool) -> dict[str, ParamSpec]:
    """The params this machine and these settings search (lossy choices dropped unless allow_lossy)."""
    out = {}
    for name, spec in cfg.space.items():
        if spec.min_gpus > max(1, num_gpus) or (spec.cuda_only and not cuda):
            continue
        if spec.choices and not cfg.allow_lossy:
            kept = {k: v for k, v in spec.choices.items() if k not in spec.lossy}
            if not kept:
                continue
            spec = ParamSpec(**{**spec.__dict__, "choices": kept})
        out[name] = spec
    return out


def _applies(spec: ParamSpec, values: dict[str, Any]) -> bool:
    return all(values.get(other) in labels for other, labels in spec.when.items())


def point_of(space: dict[str, ParamSpec], values: dict[str, Any]) -> Point:
    point = Point(params={})
    for name, spec in space.items():
        if name not in values or not _applies(spec, values):
            continue
        value = values[name]
        point.params[name] = value
        if spec.choices:
            choice = as_choice(spec.choices[value])
            point.overrides += list(choice.overrides)
            point.env.update(dict(choice.env))
            point.complexity += int(list(spec.choices).index(value) > 0)
            point.lossy = point.lossy or value in spec.lossy
        else:
            point.overrides.append(f"{spec.key}={value:g}" if isinstance(value, float) else f"{spec.key}={value}")
            point.complexity += 1
    return point


def suggest(trial, space: dict[str, ParamSpec]) -> Point:
    """Define-by-run: a param is suggested only when its `when` holds for the values suggested before it."""
    values: dict[str, Any] = {}
    for name, spec in space.items():
        if not _applies(spec, values):
            continue
        if spec.choices:
            values[name] = trial.suggest_categorical(name, list(spec.choices))
        elif spec.step is not None:
            values[name] = trial.suggest_float(name, spec.low, spec.high, step=spec.step)
        else:
            values[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
    return point_of(space, values)


def reference_values(space: dict[str, ParamSpec]) -> dict[str, Any]:
    """The first choice of every param (the simplest, resident, lossless configuration); ranges are left out."""
    values: dict[str, Any] = {}
    for name, spec in space.items():
        if spec.choices and _applies(spec, values):
            values[name] = next(iter(spec.choices))
    return values


def size(space: dict[str, ParamSpec]) -> float:
    """How many distinct points a space has (infinite with a continuous range): the search stops when all ran."""
    total = 1.0
    for spec in space.values():
        if spec.choices:
            total *= len(spec.choices)
        elif spec.step:
            total *= int(round((spec.high - spec.low) / spec.step)) + 1
        else:
            return float("inf")
    return total
