"""Kernel-name → GPU-time category rules, loaded from a YAML file (default: the SGLang guide's map)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from diffexp.errors import DiffexpError

CATEGORIES_DIR = Path(__file__).resolve().parents[2] / "conf" / "profile_categories"
DEFAULT_CATEGORIES_PATH = CATEGORIES_DIR / "guide.yaml"
# What an activity is called when no rule matches (a map without a catch-all `.*` rule).
FALLBACK_CATEGORY = "misc"
_RULE_KEYS = {"category", "pattern", "trace_categories"}


@dataclass(frozen=True)
class CategoryRule:
    """One line of the map: a kernel-name regex and/or trace categories that name a GPU-time category."""

    category: str
    pattern: re.Pattern[str] | None
    trace_categories: frozenset[str] = frozenset()

    def matches(self, kernel_name: str, trace_category: str) -> bool:
        if trace_category in self.trace_categories:
            return True
        return self.pattern is not None and self.pattern.search(kernel_name) is not None


@dataclass(frozen=True)
class CategoryMap:
    """Ordered rules; the first match wins. Classification is cached per (name, trace category)."""

    name: str
    rules: tuple[CategoryRule, ...]
    _cache: dict[tuple[str, str], str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        """Every category this map can produce, in rule order."""
        ordered = dict.fromkeys(rule.category for rule in self.rules)
        ordered.setdefault(FALLBACK_CATEGORY)
        return tuple(ordered)

    def classify(self, kernel_name: str, trace_category: str = "kernel") -> str:
        key = (kernel_name, trace_category)
        found = self._cache.get(key)
        if found is None:
            found = next(
                (rule.category for rule in self.rules if rule.matches(kernel_name, trace_category)),
                FALLBACK_CATEGORY,
            )
            self._cache[key] = found
        return found


def load_categories(path: Path | str | None = None) -> CategoryMap:
    """Read and validate a category map: a YAML path, the name of one in conf/profile_categories/, or None (guide)."""
    source = _resolve(path)
    if not source.is_file():
        known = sorted(p.stem for p in CATEGORIES_DIR.glob("*.yaml"))
        raise DiffexpError(f"category file {source} does not exist; pass a YAML path or one of {known} (--categories)")
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DiffexpError(f"category file {source} is not valid YAML: {err}") from err
    return parse_categories(document, origin=str(source))


def _resolve(path: Path | str | None) -> Path:
    if path is None:
        return DEFAULT_CATEGORIES_PATH
    given = Path(path)
    # A bare name such as "guide" (a Hydra-style option) means conf/profile_categories/<name>.yaml.
    if not given.exists() and given.suffix == "" and given.parent == Path("."):
        return CATEGORIES_DIR / f"{given.name}.yaml"
    return given


def parse_categories(document: Any, origin: str = "<memory>") -> CategoryMap:
    """Build a CategoryMap from the YAML's data; every problem is reported at once."""
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list) or not document["rules"]:
        raise DiffexpError(f"{origin}: expected a mapping with a non-empty `rules:` list of {{category, pattern}}")
    problems: list[str] = []
    rules = [
        rule
        for index, raw in enumerate(document["rules"])
        if (rule := _parse_rule(raw, f"{origin}: rules[{index}]", problems)) is not None
    ]
    if problems:
        raise DiffexpError("invalid category map:\n" + "\n".join(f"  - {p}" for p in problems))
    return CategoryMap(name=str(document.get("name", Path(origin).stem)), rules=tuple(rules))


def _parse_rule(raw: Any, where: str, problems: list[str]) -> CategoryRule | None:
    if not isinstance(raw, dict):
        problems.append(f"{where} = {raw!r}: expected a mapping with keys {sorted(_RULE_KEYS)}")
        return None
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        problems.append(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}")
    category = raw.get("category")
    if not isinstance(category, str) or not category:
        problems.append(f"{where}.category = {category!r}: expected a non-empty string")
    pattern = _compile(raw.get("pattern"), f"{where}.pattern", problems)
    trace_categories = raw.get("trace_categories", [])
    if not isinstance(trace_categories, list) or not all(isinstance(c, str) for c in trace_categories):
        problems.append(f"{where}.trace_categories = {trace_categories!r}: expected a list of strings")
        trace_categories = []
    if raw.get("pattern") is None and not trace_categories:
        problems.append(f"{where}: give a `pattern`, `trace_categories`, or both")
    if not isinstance(category, str) or not category:
        return None
    return CategoryRule(category, pattern, frozenset(trace_categories))


def _compile(pattern: Any, where: str, problems: list[str]) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        problems.append(f"{where} = {pattern!r}: expected a regular expression string")
        return None
    try:
        return re.compile(pattern)
    except re.error as err:
        problems.append(f"{where} = {pattern!r}: not a valid regular expression ({err})")
        return None
