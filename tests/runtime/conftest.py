"""Shared fixtures of the runtime tests."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from learner_script import compile_cache


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    """A persistent compilation cache per test module (and the subprocesses it starts)."""
    path = tmp_path_factory.mktemp("xla-cache")
    with compile_cache(path):
        yield path
