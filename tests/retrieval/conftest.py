"""Shared retrieval fixtures: the real default embedder (loaded once) and a registry over
a fresh data directory that uses whatever `embedder` the test module provides."""

import pytest

from retrieval.registry import IndexRegistry


@pytest.fixture(scope="session")
def embedder():
    from retrieval.embedder import Embedder

    return Embedder("builtin:all-minilm-l6-v2")


@pytest.fixture
def registry(tmp_path, embedder):
    reg = IndexRegistry(tmp_path, embedder_factory=lambda name: embedder)
    yield reg
    reg.close()
