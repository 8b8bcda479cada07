"""Presentation helpers shared by the markdown, HTML and terminal reports: short kernel names, table text."""

from __future__ import annotations

import math
import re

import pandas as pd

# What every ATen kernel name repeats (namespaces, lambda wrappers, TensorIterator parameters);
# dropping it leaves the part that tells kernels apart.
_NAMESPACES = re.compile(r"\(anonymous namespace\)::|\b(?:at::native::|at::|c10::|std::|binary_internal::)")
_WRAPPERS = re.compile(r"::\{lambda\([^()]*\)#\d+\}|::operator\(\)\(\) const|\(TensorIteratorBase&[^()]*\)")


def short_kernel_name(name: str, width: int = 90) -> str:
    """A readable label for a C++ kernel signature: no `void`, common namespaces or parameter list."""
    text = _WRAPPERS.sub("", _NAMESPACES.sub("", name.removeprefix("void ")))
    text = _strip_parameter_list(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def unique_labels(names: list[str], width: int = 90) -> list[str]:
    """Short names, with #2, #3, ... where shortening made two equal (a chart axis needs unique labels)."""
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        label = short_kernel_name(name, width)
        seen[label] = seen.get(label, 0) + 1
        labels.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return labels


def _strip_parameter_list(text: str) -> str:
    """Drop a trailing `(int, Functor, ...)`: the kernel's arguments, which repeat its template arguments."""
    if not text.endswith(")"):
        return text
    depth = 0
    for index in range(len(text) - 1, -1, -1):
        char = text[index]
        if char == ")":
            depth += 1
        elif char == "(":
            depth -= 1
            if depth == 0:
                head = text[:index].rstrip()
                return head if head.endswith(">") or head[-1:].isalnum() or head.endswith("_") else text
    return text


def format_cell(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:,.{digits}f}"
    return str(value)


def markdown_table(table: pd.DataFrame, digits: int = 3, code_columns: tuple[str, ...] = ("name", "scope")) -> str:
    """GitHub markdown for a DataFrame (pandas' to_markdown needs tabulate, which we do not depend on).

    Kernel and scope names go in code spans, so C++ template brackets are not read as HTML.
    """
    header = "| " + " | ".join(str(c) for c in table.columns) + " |"
    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]
    rule = "|" + "|".join("---:" if is_number else "---" for is_number in numeric) + "|"
    as_code = [c in code_columns for c in table.columns]
    rows = [
        "| " + " | ".join(_markdown_cell(v, digits, code) for v, code in zip(row, as_code, strict=True)) + " |"
        for row in table.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


def _markdown_cell(value: object, digits: int, code: bool) -> str:
    text = format_cell(value, digits).replace("|", "\\|")
    return f"`{text.replace('`', '')}`" if code and text else text


def with_short_names(table: pd.DataFrame, column: str = "name", width: int = 90) -> pd.DataFrame:
    out = table.copy()
    out[column] = unique_labels(out[column].tolist(), width)
    return out
