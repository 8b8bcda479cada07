"""Package names that load from their modules on first use (PEP 562), so that importing one light module of a
package does not import the package's heavy ones: untracked use on a GPU box has no MLflow, and `diffexp.ab`,
the tuner's review gate and the floor must run there."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def exports(package: str, homes: dict[str, str]) -> tuple[Callable[[str], object], list[str]]:
    """(`__getattr__`, `__all__`) for `package`, where `homes` maps each public name to its module."""

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{homes[name]}"), name)

    return __getattr__, sorted(homes)
