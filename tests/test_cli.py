"""The `semcode` command as a user runs it: real processes, real index on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sample_workspace import write_files

SEMCODE = [sys.executable, "-m", "semcode"]


def run(args: list[str], tmp_path: Path, env_extra: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEMCODE_CACHE_DIR": str(tmp_path / "cache"),
           "HF_HOME": str(tmp_path / "hf"), **(env_extra or {})}
    proc = subprocess.run([*SEMCODE, *args], capture_output=True, text=True, env=env,
                          timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"semcode {args} exited {proc.returncode}:\n{proc.stderr}")
    return proc


LEXICAL = ["--embedding-model", "off", "--reranker-model", "off"]


def test_index_then_search_json(workspace, tmp_path):
    proc = run(["index", str(workspace), *LEXICAL], tmp_path)
    assert "4 files" in proc.stderr and "chunks" in proc.stderr
    proc = run(["search", "-w", str(workspace), "--json", "-k", "3", *LEXICAL,
                "sleep with exponential backoff between attempts"], tmp_path)
    results = json.loads(proc.stdout)
    top = results[0]
    assert {"path", "start_line", "end_line", "name", "kind", "language", "score",
            "stages"} <= top.keys()
    assert (top["path"], top["start_line"], top["end_line"], top["name"], top["kind"]) == \
        ("src/http_client.py", 11, 17, "get_with_retry", "method")
    assert top["container"] == "HttpClient" and top["stages"]["lexical"]["rank"] == 1
    assert len(results) <= 3


def test_human_output_and_filters(workspace, tmp_path):
    proc = run(["search", "-w", str(workspace), *LEXICAL, "--lang", "go", "configuration file"],
               tmp_path)
    first = proc.stdout.splitlines()[0]
    assert first.startswith(" 1. pkg/parse.go:3 ParseConfigFile (function)")
    assert "func ParseConfigFile" in proc.stdout.splitlines()[1]


def test_many_queries_as_json_lines(workspace, tmp_path):
    queries = tmp_path / "queries.txt"
    queries.write_text("refresh expired token\n\nparse config file\n")
    proc = run(["search", "-w", str(workspace), "--json", *LEXICAL, "--queries", str(queries)],
               tmp_path)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [entry["query"] for entry in lines] == ["refresh expired token", "parse config file"]
    assert lines[0]["results"][0]["name"] == "refreshExpiredToken"


def test_no_model_reachable_says_so_once_and_returns_lexical_results(workspace, tmp_path):
    # A hub model, nothing cached, and a hub address nobody listens on.
    proc = run(["search", "-w", str(workspace), "--embedding-model",
                "hf:minishlab/potion-code-16M-v2", "--reranker-model", "off",
                "refresh expired token"], tmp_path,
               env_extra={"HF_ENDPOINT": "http://127.0.0.1:9"})
    notices = [ln for ln in proc.stderr.splitlines() if ln.startswith("semcode: ")]
    semantic = [ln for ln in notices if "semantic search is off" in ln]
    assert len(semantic) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "refreshExpiredToken" in proc.stdout.splitlines()[0]


def test_second_index_is_a_no_op(workspace, tmp_path):
    run(["index", str(workspace), *LEXICAL], tmp_path)
    proc = run(["index", str(workspace), *LEXICAL], tmp_path)
    assert "(0 changed, 0 removed" in proc.stderr


def test_index_with_tiny_models_embeds_then_embeds_nothing(workspace, tmp_path, tiny_models):
    models = ["--embedding-model", str(tiny_models.embedder),
              "--reranker-model", str(tiny_models.reranker)]
    first = run(["index", str(workspace), *models], tmp_path)
    assert "embedded" in first.stderr and "(0 pending)" in first.stderr
    second = run(["index", str(workspace), *models], tmp_path)
    assert "embedded 0 chunks" in second.stderr
    proc = run(["search", "-w", str(workspace), "--json", *models, "token cache lookup"],
               tmp_path)
    results = json.loads(proc.stdout)
    assert results and results[0]["reranked"] is True
    assert "rerank" in results[0]["stages"] and "fused" in results[0]["stages"]


def test_status_and_models_commands(workspace, tmp_path):
    before = run(["status", "-w", str(workspace), "--json"], tmp_path, check=False)
    assert before.returncode == 1 and json.loads(before.stdout)["indexed"] is False
    assert not (tmp_path / "cache").exists()  # asking created nothing
    run(["index", str(workspace), *LEXICAL], tmp_path)
    status = json.loads(run(["status", "-w", str(workspace), "--json"], tmp_path).stdout)
    assert status["files"] == 4 and status["chunks"] > 4
    proc = run(["models", "--json", "--offline"], tmp_path)
    rows = {row["role"]: row for row in json.loads(proc.stdout)}
    # `auto` on this CPU-only machine: the static model shipped in the package; the
    # reranker is off unless the CPU fits the rerank budget.
    assert rows["embedder"]["state"] == "built-in" and rows["reranker"]["state"] in ("missing",
                                                                                      "off")


def test_models_shows_the_builtin_reranker_state(tmp_path):
    from semcode.models.builtin import reranker_file

    proc = run(["models", "--json", "--offline", "--reranker-model", "builtin"], tmp_path,
               check=False)
    row = {r["role"]: r for r in json.loads(proc.stdout)}["reranker"]
    assert row["setting"] == "builtin" and row["backend"] == "llama.cpp"
    if reranker_file() is None:  # not shipped yet: missing, said why, not an error
        assert proc.returncode == 0
        assert row["state"] == "missing" and "ships no built-in reranker" in row["message"]
    else:
        assert row["state"] == "built-in" and row["path"] == str(reranker_file())


def test_usage_errors_are_one_line(tmp_path):
    proc = run(["search", "-w", str(tmp_path / "nope"), "x"], tmp_path, check=False)
    assert proc.returncode == 2 and "not a directory" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run(["search", "-w", str(tmp_path), "--set", "rrf_k=-1", "x"], tmp_path, check=False)
    assert proc.returncode == 2 and "rrf_k" in proc.stderr
    proc = run(["search", "-w", str(tmp_path)], tmp_path, check=False)
    assert proc.returncode == 2


def test_eval_prints_a_table_per_stage(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    write_files(root, {
        "shapes.py": '''
            def circle_area(radius):
                """Compute the area enclosed by a circle of the given radius."""
                return 3.14159 * radius * radius


            def rectangle_perimeter(width, height):
                """Return the total length of the boundary of a rectangle."""
                return 2 * (width + height)
            ''',
    })
    proc = run(["eval", "-w", str(root), "--json", *LEXICAL], tmp_path)
    (docstring,) = json.loads(proc.stdout)  # not a git repository: no commit protocol
    assert docstring["protocol"] == "docstring" and docstring["corpus"]["queries"] == 2
    lexical = docstring["summary"]["all"]["stages"]["lexical"]
    assert lexical["MRR@10"]["mean"] == 1.0  # both functions found first by their summaries
    assert "dense" not in docstring["summary"]["all"]["stages"]  # no embedder: not measured
