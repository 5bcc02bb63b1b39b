"""A buffer edit rewrites only the chunks it changed (issue 13, item 1): a chunk stored
exactly as before keeps its row and id, so a keystroke costs one chunk's write, the
BM25 changes since the last build stay as small as the edit, and the vectors of the
untouched chunks stay; every view (store, refs, lexical, vectors, another process)
still equals a fresh index of the same text."""

from __future__ import annotations

from pathlib import Path

from index_harness import embed_all, settings, state
from semcode.index.indexer import Indexer

FUNCS = "".join(f"def helper_number_{n}(value):\n    return value + {n}\n\n\n"
                for n in range(6))


def ids_by_name(ix: Indexer) -> dict[str, int]:
    return {ix.chunks([i])[i].name: i for i in ix.refs}


def test_an_edit_keeps_the_ids_of_the_chunks_it_did_not_change(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "mod.py").write_text(FUNCS)
    ix = Indexer(root, settings(tmp_path / "index"))
    ix.sync()
    embed_all(ix)
    before = ids_by_name(ix)
    generation = ix.store.generation

    # Typing inside one function: only that chunk is new.
    ix.update_text("mod.py", FUNCS.replace("value + 3", "value * 3"))
    after = ids_by_name(ix)
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {"helper_number_3"}
    assert after["helper_number_3"] not in ix.vectors  # type: ignore[operator]
    assert all(after[n] in ix.vectors for n in after if n not in changed)  # type: ignore[operator]
    assert ix.lexical.pending == 2  # the old row hidden, the new one pending
    assert ix.store.generation > generation
    assert set(ix.store.chunks_of_file("mod.py")) == set(ix.refs) == ix.lexical.chunk_ids()

    # A line added above: every chunk below moved, so every chunk below is new.
    ix.update_text("mod.py", "import os\n" + FUNCS.replace("value + 3", "value * 3"))
    moved = ids_by_name(ix)
    assert all(moved[n] != after[n] for n in after)
    assert set(ix.store.chunks_of_file("mod.py")) == set(ix.refs) == ix.lexical.chunk_ids()

    # The same text again: nothing changes but the file's record.
    ix.update_text("mod.py", "import os\n" + FUNCS.replace("value + 3", "value * 3"))
    assert ids_by_name(ix) == moved

    # What anyone can observe equals a fresh index of that text, here and in another
    # process that catches up by id.
    other = Indexer(root, settings(tmp_path / "index"))
    fresh_root = tmp_path / "fresh"
    fresh_root.mkdir()
    (fresh_root / "mod.py").write_text("import os\n" + FUNCS.replace("value + 3", "value * 3"))
    fresh = Indexer(fresh_root, settings(tmp_path / "fresh-index"))
    fresh.sync()
    for ix_ in (ix, other, fresh):
        embed_all(ix_)
    assert state(ix)["chunks"] == state(other)["chunks"] == state(fresh)["chunks"]
    assert state(ix)["lexical"] == state(other)["lexical"] == state(fresh)["lexical"]
