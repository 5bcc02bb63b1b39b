"""The training-data pipeline (`training/data`, issue 18) end to end on a tiny corpus made
here: `python -m training data` as a subprocess over a manifest of two fixture packages
(no network: their archives are put in the cache; fetching still verifies them), then the
output is read back: pairs of every source, the doc removed from the gold code, hard
negatives from the same package, a body copied across packages kept once, a vendored copy
of a held-out project and an excluded package never read, and a package whose archive does
not match its pin reported in one line while the others are built."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from training.data.exclusions import Exclusions
from training.data.manifest import FetchMethod, Language, Manifest, Package, file_sha256, write

REPO = Path(__file__).resolve().parents[1]
Built = tuple[Path, subprocess.CompletedProcess[str]]

UTIL = '''\
def parse_http_date(value):
    """Parse an HTTP date header into a timestamp in seconds.

    More words that are not the summary.
    """
    parts = value.split()
    return int(parts[0]) * 86400 + len(parts)


def format_http_date(stamp):
    """Format a timestamp as the value of an HTTP date header."""
    days = stamp // 86400
    return f"{days} days"


def quote_header_value(text):
    """Quote a header value when it holds separators or spaces."""
    if any(c in text for c in " ,;"):
        return '"' + text.replace('"', '\\\\"') + '"'
    return text


class RetryPolicy:
    """Decide how long to wait before retrying a failed request again."""

    def backoff_delay(self, attempt):
        """Compute the delay before the next retry attempt in seconds."""
        return min(60, 2 ** attempt)
'''

README = '''\
# httpdates

## Dates

The library turns the dates that servers send in their headers into numbers you can
compare, see `parse_http_date`, and is careful with odd spacing.
'''

COPY = '''\
def parse_date_copy(value):
    """Turn the date a server sent into a count of seconds for comparisons."""
    parts = value.split()
    return int(parts[0]) * 86400 + len(parts)


def merge_query_strings(left, right):
    """Merge two query strings, the right one winning on equal keys."""
    pairs = dict(p.split("=", 1) for p in left.split("&") if p)
    pairs.update(p.split("=", 1) for p in right.split("&") if p)
    return "&".join(f"{k}={v}" for k, v in pairs.items())
'''

VENDORED = '''\
def vendored_session_send(request):
    """Send a prepared request through the vendored session adapter."""
    return request.send()
'''


def _npm_tarball(path: Path, files: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _package(name: str, file: str, archive: Path) -> Package:
    return Package(name=name, language=Language.PYTHON, fetch=FetchMethod.NPM,
                   spec=f"{name}@1.0.0", file=file, sha256=file_sha256(archive),
                   url=f"http://127.0.0.1:9/{file}")  # never reached: the cache has it


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Run the build once over the fixture manifest; (output dir, the finished process)."""
    root = tmp_path_factory.mktemp("training")
    archives = root / "cache" / "semcode-build" / "training" / "archives"
    archives.mkdir(parents=True)
    _npm_tarball(archives / "httpdates-1.0.0.tgz",
                 {"httpdates/util.py": UTIL, "README.md": README,
                  "httpdates/_vendor/requests/sessions.py": VENDORED,
                  "tests/test_util.py": "def test_parse():\n    assert True\n"})
    _npm_tarball(archives / "querytools-1.0.0.tgz", {"querytools/core.py": COPY})
    _npm_tarball(archives / "broken-1.0.0.tgz", {"broken/x.py": COPY})
    packages = [_package("httpdates", "httpdates-1.0.0.tgz", archives / "httpdates-1.0.0.tgz"),
                _package("querytools", "querytools-1.0.0.tgz",
                         archives / "querytools-1.0.0.tgz"),
                Package(name="broken", language=Language.PYTHON, fetch=FetchMethod.NPM,
                        spec="broken@1.0.0", file="broken-1.0.0.tgz", sha256="0" * 64,
                        url="http://127.0.0.1:9/broken-1.0.0.tgz")]
    manifest = root / "manifest.toml"
    write(Manifest(tuple(packages), ("requests",), ()), manifest)
    out = root / "out"
    env = {**os.environ, "XDG_CACHE_HOME": str(root / "cache"),
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "server")])}
    done = subprocess.run([sys.executable, "-m", "training", "data", "--manifest", str(manifest),
                           "--out", str(out), "--jobs", "1", "--no-bench"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return out, done


def _pairs(out: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for split in ("train", "valid"):
        with gzip.open(out / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
            rows += [json.loads(line) for line in f]
    return rows


def test_pairs_of_every_source_with_the_doc_removed(built: Built) -> None:
    """Docstring, docs and identifier pairs, each gold code without its doc."""
    out, done = built
    assert done.returncode == 0, done.stderr
    pairs = _pairs(out)
    by = {(p["source"], p["name"]): p for p in pairs}
    doc = by[("docstring", "parse_http_date")]
    assert doc["query"] == "Parse an HTTP date header into a timestamp in seconds."
    assert "Parse an HTTP date" not in str(doc["code"])
    assert "def parse_http_date" in str(doc["code"])
    assert doc["language"] == "python" and doc["package"] == "httpdates"
    assert doc["path"] == "httpdates/util.py"
    assert ("docstring", "RetryPolicy.backoff_delay") in by
    assert by[("identifier", "format_http_date")]["query"] == "format http date"
    docs = by[("docs", "parse_http_date")]
    assert "parse_http_date" not in str(docs["query"]) and "dates" in str(docs["query"])
    assert set(json.loads((out / "stats.json").read_text())["pairs"]) == {"train", "valid"}


def test_hard_negatives_come_from_the_same_package(built: Built) -> None:
    """Up to 4 negatives, never the gold, all chunks of the gold's package."""
    out, _ = built
    doc = next(p for p in _pairs(out)
               if p["source"] == "docstring" and p["name"] == "parse_http_date")
    negatives = doc["negatives"]
    assert isinstance(negatives, list) and 1 <= len(negatives) <= 4
    assert doc["code"] not in negatives
    assert any("format_http_date" in n for n in negatives)
    assert not any("merge_query_strings" in n for n in negatives)


def test_a_copied_body_is_kept_once(built: Built) -> None:
    """`parse_date_copy` has `parse_http_date`'s body: only the first package's pair stays."""
    out, _ = built
    pairs = _pairs(out)
    assert not [p for p in pairs if p["name"] == "parse_date_copy"]
    assert [p for p in pairs if p["name"] == "merge_query_strings"]
    assert json.loads((out / "stats.json").read_text())["duplicates_dropped"] >= 1


def test_vendored_held_out_code_and_tests_are_never_read(built: Built) -> None:
    """A vendored `requests` and the test files give neither pairs nor negatives."""
    out, _ = built
    text = json.dumps(_pairs(out))
    assert "vendored_session_send" not in text and "test_parse" not in text


def test_an_archive_that_does_not_match_its_pin_is_one_line(built: Built) -> None:
    """The broken package is reported in one line; the others are built all the same."""
    out, done = built
    assert done.returncode == 0
    lines = [line for line in done.stderr.splitlines() if "broken-1.0.0.tgz" in line]
    assert len(lines) == 1 and "sha256" in lines[0] and "is not the pinned" in lines[0]
    assert "Traceback" not in done.stderr
    assert "broken" not in {p["package"] for p in _pairs(out)}


def test_excluded_projects_match_loosely() -> None:
    """Held-out and bench projects, their packagings and plugins are excluded by name."""
    exclusions = Exclusions.default()
    for name in ("python-requests", "golang-github-spf13-cobra-dev", "ruby-sinatra",
                 "librust-axum-dev", "libgoogle-gson-java", "@fastify/cors", "flask-login",
                 "libcommons-io-java", "@tanstack/query-core"):
        assert exclusions.excludes_package(name), name
    for name in ("numpy", "jquery", "typescript", "librust-serde-dev"):
        assert exclusions.excludes_package(name) is None, name
    assert exclusions.excludes_path("vendor/github.com/gin-gonic/gin/context.go") == "gin"
    assert exclusions.excludes_path("src/ginger/context.go") is None


def test_a_scoped_npm_tarball_is_kept_under_its_pinned_name(tmp_path: Path) -> None:
    """The registry names `@adobe/css-tools`' tarball `css-tools-4.4.0.tgz`, `npm pack`
    (and so the manifest) `adobe-css-tools-4.4.0.tgz`: the fetch keeps the pinned name."""
    from training.data.fetch import fetch

    served = tmp_path / "registry" / "css-tools-4.4.0.tgz"
    served.parent.mkdir()
    _npm_tarball(served, {"index.js": "module.exports = 1;\n"})
    package = Package(name="@adobe/css-tools", language=Language.JAVASCRIPT,
                      fetch=FetchMethod.NPM, spec="@adobe/css-tools@4.4.0",
                      file="adobe-css-tools-4.4.0.tgz", sha256=file_sha256(served),
                      url=served.as_uri())
    (tmp_path / "archives").mkdir()
    got = fetch(package, tmp_path / "archives")
    assert got == tmp_path / "archives" / "adobe-css-tools-4.4.0.tgz"
    assert file_sha256(got) == package.sha256
