"""A `CHUNKER_VERSION` bump re-chunks an index once, keeps every cached embedding whose
chunk text did not change, and says so in one log line: a real index (the built-in
static embedder) in a temporary workspace."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sample_workspace import write_files
from semcode.config import Settings
from semcode.index import indexer
from semcode.search.engine import Engine


def builtin_settings(tmp_path: Path) -> Settings:
    return Settings.from_mapping({"embedding_model": "builtin", "reranker_model": "off",
                                  "index_dir": str(tmp_path / "index")})


def rechunk_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "chunker changed" in r.getMessage()]


def test_a_chunker_version_bump_rechunks_once_and_keeps_unchanged_embeddings(
        workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = builtin_settings(tmp_path)
    engine = Engine.open(workspace, settings)
    engine.sync()
    first = engine.embed_pending()
    engine.close()
    assert first.error == "" and first.embedded > 0 and first.pending == 0

    # The new chunker: one file's chunks change, every other chunk's text stays the same.
    monkeypatch.setattr(indexer, "CHUNKER_VERSION", indexer.CHUNKER_VERSION + "-next")
    write_files(workspace, {"lib/mailer.py": "def send_welcome_email(user):\n    pass\n"})
    caplog.set_level(logging.INFO, logger="semcode")
    engine = Engine.open(workspace, settings)
    report = engine.sync()
    again = engine.embed_pending()
    engine.close()
    assert report.files_indexed == report.files_seen  # every file re-chunked
    assert again.embedded == 1 and again.pending == 0  # only the new chunk was embedded
    lines = rechunk_lines(caplog)
    assert len(lines) == 1 and "cached embeddings" in lines[0], lines

    caplog.clear()
    engine = Engine.open(workspace, settings)  # once: the next open does not re-chunk
    assert engine.sync().files_indexed == 0
    engine.close()
    assert rechunk_lines(caplog) == []
