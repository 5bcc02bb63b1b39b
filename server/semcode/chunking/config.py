"""The sizes chunking works with, in a leaf of chunking/: the chunker passes them down to
the symbol and window chunkers, which therefore need the type but not the chunker (no
import cycle). Its defaults are the `Settings` defaults (their one home)."""

from __future__ import annotations

from dataclasses import dataclass

from semcode.config import Settings


@dataclass(frozen=True)
class ChunkerConfig:
    """The sizes chunking works with (from `Settings`)."""

    # A dataclass keeps a plain default as the class attribute: these read Settings' own.
    max_chunk_lines: int = Settings.max_chunk_lines  # longer definitions are split into parts
    chunk_overlap_lines: int = Settings.chunk_overlap_lines  # overlap between parts, windows
    window_lines: int = Settings.window_lines  # size of Module / File windows

    @classmethod
    def of(cls, settings: Settings) -> ChunkerConfig:
        """The sizes these settings ask for."""
        return cls(settings.max_chunk_lines, settings.chunk_overlap_lines,
                   settings.window_lines)


__all__ = ["ChunkerConfig"]
