"""The sizes chunking works with, in a leaf of chunking/: the chunker passes them down to
the symbol and window chunkers, which therefore need the type but not the chunker (no
import cycle)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChunkerConfig:
    """The sizes chunking works with (from `Settings`)."""

    max_chunk_lines: int = 120  # longer definitions are split into parts
    chunk_overlap_lines: int = 12  # overlap between parts and between text windows
    window_lines: int = 60  # size of Module / File windows


__all__ = ["ChunkerConfig"]
