"""Captured denoise steps of the real tiny pipelines, shared by the floor tests (building one takes seconds)."""

from __future__ import annotations

import pytest
from floor_helpers import captured


@pytest.fixture(scope="module")
def tiny_flux_step():
    return captured("model=tiny_flux")


@pytest.fixture(scope="module")
def tiny_wan_step():
    return captured("model=tiny_wan")
