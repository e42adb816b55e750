"""The registry's use cases over fakes: one tracking run with a model, nothing registered."""

from __future__ import annotations

import pytest

from tests.fakes.registry import Registry, fake_registry


@pytest.fixture
def registry() -> Registry:
    return fake_registry()
