"""The order of a paired measurement's rounds: the sides as given in even rounds, reversed in odd ones (AB BA AB …),
so an effect of running second (a warm cache, a hotter GPU) cancels over the rounds instead of biasing every pair."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def alternating(sides: Sequence[T], round_index: int) -> tuple[T, ...]:
    """The sides of round `round_index` in the order they run."""
    return tuple(sides) if round_index % 2 == 0 else tuple(reversed(sides))
