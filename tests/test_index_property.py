"""Property test (issue 12): seeded random operations on a workspace, applied through
the CLI path (`sync`) and the editor path (`update_text`, `revert_file`,
`remove_file`), and after every batch the index equals one built from scratch: chunks,
lexical results (with their tie order), vector ids and dense results.

SEMCODE_PROPERTY_SEED=N reruns one seed; SEMCODE_PROPERTY_OPS=N changes the count."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from index_harness import diff, embed_all, rebuild_state, settings, state
from semcode.index.indexer import Indexer
from semcode.models.registry import ModelSet
from semcode.search.engine import Engine, SearchRequest

SEED = int(os.environ.get("SEMCODE_PROPERTY_SEED", "20261130"))
OPS = int(os.environ.get("SEMCODE_PROPERTY_OPS", "1000"))
BATCH = 25

WORDS = ("alpha", "beta", "gamma", "delta", "fetch", "user", "parse", "config", "value",
         "retry", "request", "token", "cache", "lookup", "compute", "total")
NAMES = ("fetch_user", "parse_config", "retry_request", "compute_total", "lookup",
         "alpha", "beta_gamma", "delta")  # few names: duplicates and ties happen
DIRS = ("", "pkg", "pkg/sub", "lib", "tools")


class World:
    """The workspace on disk plus what an editor holds, changed at random."""

    def __init__(self, root: Path, rng: random.Random, index: Path | None = None) -> None:
        self.index = index
        self.root = root
        self.rng = rng
        self.buffers: dict[str, str] = {}
        self.branches: dict[int, dict[str, bytes]] = {}
        self.log: list[str] = []

    # ---------------------------------------------------------------- content
    def func(self) -> str:
        r = self.rng
        name = r.choice(NAMES)
        body = " ".join(r.choice(WORDS) for _ in range(r.randint(1, 6)))
        if r.random() < 0.2:  # identical bodies in several places: score ties
            body = "alpha beta"
        return f"def {name}(x):\n    return '{body}'\n"

    def module(self) -> str:
        return "\n\n".join(self.func() for _ in range(self.rng.randint(1, 4)))

    def files(self) -> list[str]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d != ".git"]
            for f in filenames:
                rel = os.path.relpath(os.path.join(dirpath, f), self.root).replace(os.sep, "/")
                if rel.endswith(".py"):
                    out.append(rel)
        return sorted(out)

    def dirs(self) -> list[str]:
        out = []
        for dirpath, dirnames, _ in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d != ".git"]
            if dirpath != str(self.root):
                out.append(os.path.relpath(dirpath, self.root).replace(os.sep, "/"))
        return sorted(out)

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        if path.is_dir():
            shutil.rmtree(path)
        parent = path.parent
        while parent != self.root and not parent.is_dir():
            if parent.exists():  # a file where a directory must go
                parent.unlink()
                break
            parent = parent.parent
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def new_path(self) -> str:
        d = self.rng.choice(DIRS)
        name = f"m{self.rng.randint(0, 14)}.py"
        return f"{d}/{name}" if d else name

    def close_buffers_under(self, rel: str, ix: Engine) -> None:
        for path in [p for p in self.buffers if p == rel or p.startswith(rel + "/")]:
            del self.buffers[path]
            ix.revert_file(path)

    # ---------------------------------------------------------------- operations
    def step(self, ix: Engine) -> None:
        r = self.rng
        files = self.files()
        op = r.choices(
            ["create", "edit", "add_def", "del_def", "delete", "rename", "rmdir",
             "file_to_dir", "dir_to_file", "ignore", "branch", "buf_edit", "buf_close",
             "watch_delete", "buf_rename", "other_process"],
            weights=[22, 14, 8, 8, 5, 6, 1, 3, 1, 3, 2, 10, 5, 3, 3, 4])[0]
        self.log.append(op)
        if op == "create" or not files:
            self.write(self.new_path(), self.module())
        elif op == "edit":
            rel = r.choice(files)
            if rel in self.buffers:
                return
            self.write(rel, self.module())
        elif op in ("add_def", "del_def"):
            rel = r.choice(files)
            if rel in self.buffers:
                return
            text = (self.root / rel).read_text(encoding="utf-8")
            parts = [p for p in text.split("\n\n") if p.strip()]
            if op == "add_def":
                parts.insert(r.randint(0, len(parts)), self.func())
            elif len(parts) > 1:
                parts.pop(r.randrange(len(parts)))
            self.write(rel, "\n\n".join(parts))
        elif op == "delete":
            rel = r.choice(files)
            self.close_buffers_under(rel, ix)
            (self.root / rel).unlink()
        elif op == "rename":
            rel = r.choice(files)
            self.close_buffers_under(rel, ix)
            new = self.new_path()
            if (self.root / new).exists():
                return
            text = (self.root / rel).read_text(encoding="utf-8")
            (self.root / rel).unlink()
            self.write(new, text)
        elif op == "rmdir":
            dirs = self.dirs()
            if dirs:
                d = r.choice(dirs)
                self.close_buffers_under(d, ix)
                shutil.rmtree(self.root / d)
        elif op == "file_to_dir":  # rm tools; mkdir tools; add tools/frob.py
            rel = r.choice(files)
            self.close_buffers_under(rel, ix)
            (self.root / rel).unlink()
            self.write(f"{rel}/frob.py", self.module())
        elif op == "dir_to_file":
            dirs = self.dirs()
            if dirs:
                d = r.choice(dirs)
                self.close_buffers_under(d, ix)
                shutil.rmtree(self.root / d)
                self.write(d, self.module())  # a file named like the folder (no .py)
                if r.random() < 0.5:
                    (self.root / d).rename(self.root / f"{d}.py")
        elif op == "ignore":
            for path in list(self.buffers):
                self.close_buffers_under(path, ix)
            rules = r.sample(["pkg/", "lib/sub/", "m3.py", "*7.py", "!pkg/m1.py", "tools"],
                             r.randint(0, 3))
            if rules:
                (self.root / ".gitignore").write_text("\n".join(rules) + "\n")
            else:
                (self.root / ".gitignore").unlink(missing_ok=True)
        elif op == "branch":  # save this tree as a branch, check out another one
            for path in list(self.buffers):
                self.close_buffers_under(path, ix)
            current = {p: (self.root / p).read_bytes() for p in files}
            name = r.randint(0, 2)
            other = self.branches.get(name)
            self.branches[r.randint(0, 2)] = current
            if other is not None:
                for d in os.listdir(self.root):
                    if d != ".git":
                        p = self.root / d
                        shutil.rmtree(p) if p.is_dir() else p.unlink()
                for p, data in other.items():
                    self.write(p, data.decode())
        elif op == "buf_edit":  # an unsaved editor buffer
            rel = r.choice(files)
            text = self.module()
            self.buffers[rel] = text
            ix.update_file(rel, text)
        elif op == "buf_close":
            if self.buffers:
                rel = r.choice(sorted(self.buffers))
                del self.buffers[rel]
                if r.random() < 0.3:  # saved before closing
                    self.write(rel, (self.root / rel).read_text(encoding="utf-8")
                               if rel not in self.buffers else self.buffers[rel])
                ix.revert_file(rel)
        elif op == "buf_rename":  # renamed in the editor's explorer (willRename/didRename)
            rel = r.choice(files)
            self.close_buffers_under(rel, ix)
            new = self.new_path()
            if (self.root / new).exists() or new == rel:
                return
            text = (self.root / rel).read_text(encoding="utf-8")
            (self.root / rel).unlink()
            self.write(new, text)
            ix.rename_file(rel, new)
        elif op == "other_process" and self.index is not None:
            # A terminal `semcode index` (or `--full`, or one that found the database
            # damaged) on the same index while this engine runs. It knows nothing of
            # the editor's buffers: its sync writes the disk's text over them.
            if r.random() < 0.5:
                self.write(self.new_path(), self.module())
            kind = r.choices(["sync", "full", "recover"], weights=[6, 2, 1])[0]
            other = Indexer(self.root, settings(self.index), recover=kind == "recover")
            if kind == "full":
                other.reset()
            other.sync()
            embed_all(other)
            other.flush()
            other.close()
        elif op == "watch_delete":  # a watcher event instead of a sync
            targets = files + self.dirs()
            rel = r.choice(targets)
            self.close_buffers_under(rel, ix)
            p = self.root / rel
            shutil.rmtree(p) if p.is_dir() else p.unlink()
            ix.remove_file(rel)
        if r.random() < 0.25:
            ix.sync()


def open_engine(root: Path, index: Path) -> Engine:
    s = settings(index)
    return Engine(Indexer(root, s), ModelSet(s))


def search_order(engine: Engine) -> list[list[tuple[str, int, str]]]:
    """The engine's answers (fusion and all), ties included, as stable keys."""
    out = []
    for q in ("alpha beta", "fetch user", "compute total delta"):
        res = engine.search(SearchRequest(query=q, limit=8, mode="lexical", rerank=False))
        out.append([(h.chunk.path, h.chunk.start_line, h.chunk.name) for h in res.hits])
    return out


def test_random_operations_equal_a_rebuild(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    root = tmp_path / "ws"
    root.mkdir()
    world = World(root, rng, tmp_path / "index")
    for _ in range(6):
        world.write(world.new_path(), world.module())
    engine = open_engine(root, tmp_path / "index")
    done, batches = 0, 0
    try:
        engine.sync()
        while done < OPS:
            for _ in range(BATCH):
                world.step(engine)
                done += 1
            engine.sync()
            embed_all(engine.indexer)
            batches += 1
            if batches % 5 == 0:  # a restart in between: what was saved must reload
                engine.close()
                engine = open_engine(root, tmp_path / "index")
                for path, text in world.buffers.items():
                    engine.update_file(path, text)
                embed_all(engine.indexer)
            got = {**state(engine.indexer), "search": search_order(engine)}
            fresh = tmp_path / f"rebuild-{batches % 2}"
            want = rebuild_state(root, fresh, world.buffers)
            rebuilt = open_engine(root, fresh)
            want["search"] = search_order(rebuilt)
            rebuilt.indexer.close()
            shutil.rmtree(fresh)
            if got != want:
                pytest.fail(f"seed {SEED}: after {done} operations (batch {batches}, last "
                            f"ops {world.log[-BATCH:]}) the index differs from a rebuild:\n"
                            f"{diff(got, want)}\nrerun: SEMCODE_PROPERTY_SEED={SEED}")
    finally:
        engine.indexer.close()
    print(f"[property] seed {SEED}: {done} operations in {batches} batches, "
          f"{len(world.files())} files at the end")
