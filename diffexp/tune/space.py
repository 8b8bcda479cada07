"""A search space's points: Optuna suggestions turned into run overrides (and environment), the reference point,
and how simple a point is (the tie-break)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Optional

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


def values_of(spec: ParamSpec) -> Optional[list[Any]]:
    """A param's values: its choices' labels, or a stepped range's points (low, low + step, … ≤ high); None for a
    continuous range."""
    if spec.choices:
        return list(spec.choices)
    if spec.step is None:
        return None
    count = int(round((spec.high - spec.low) / spec.step)) + 1
    return [round(spec.low + k * spec.step, 12) for k in range(count)]


def size(space: dict[str, ParamSpec]) -> float:
    """How many distinct points a space has, as define-by-run suggestion makes them (a `when` param counts only
    where its condition holds: prefetch sizes only with layerwise offload); infinite with a continuous range. The
    search stops when all ran; a grid runs each once."""
    conditions = {other for spec in space.values() for other in spec.when}
    # Points counted per assignment of the params some `when` reads (the rest only multiply).
    counts: dict[tuple, int] = {(): 1}
    for name, spec in space.items():
        values = values_of(spec)
        if values is None:
            return float("inf")
        grown: dict[tuple, int] = {}
        for state, n in counts.items():
            if not _applies(spec, dict(state)):
                branches = [(state, n)]
            elif name in conditions:
                branches = [((*state, (name, v)), n) for v in values]
            else:
                branches = [(state, n * len(values))]
            for key, count in branches:
                grown[key] = grown.get(key, 0) + count
        counts = grown
    return float(sum(counts.values()))


def fingerprint(space: dict[str, ParamSpec], base: list[str]) -> str:
    """A short hash of the searched space (its params as this machine and these settings search them) and the
    overrides every trial gets: two tunings with the same fingerprint searched the same points."""
    data = {"space": {name: dataclasses.asdict(spec) for name, spec in space.items()}, "base": list(base)}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
