"""Build the training pairs from the manifest, cached per package, on every core.

    python -m training data [--manifest training/manifest.toml] [--only LANG,...] [--jobs N]

1. fetch: every archive, verified (`fetch.py`);
2. per package (a worker process each): files -> stripped chunks -> pairs -> hard
   negatives, written to `<cache>/pairs/packages/`, keyed by the archive's sha256 and a
   hash of the code that makes pairs (so a changed generator re-runs, an unchanged one
   reads the cache);
3. the bench corpora's definition bodies (cached the same way), never trained on;
4. merge: pairs whose gold body was seen before (another package, the bench) dropped,
   ~5% of the packages of every language held back as validation, written to
   `<cache>/pairs/{train,valid}.jsonl.gz` with `stats.json`.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from training.data.exclusions import Exclusions
from training.data.fetch import fetch_all
from training.data.manifest import MANIFEST, Manifest, Package, cache_root, file_sha256, load
from training.data.negatives import hard_negatives
from training.data.pairs import LANGUAGES, body_hash, package_pairs, stripped_chunks
from training.data.sources import read_package

VALID_EVERY = 20  # a package whose name hash is 0 mod 20 is validation (~5%)
_HERE = Path(__file__).resolve().parent
_SEMCODE = _HERE.parents[1] / "server" / "semcode"


def generator_hash() -> str:
    """A hash of the code that decides a package's pairs."""
    h = hashlib.sha256()
    paths = [*(_HERE / n for n in ("sources.py", "pairs.py", "docs.py", "negatives.py",
                                  "exclusions.py")),
             *sorted((_SEMCODE / "chunking").glob("*.py")),
             *sorted((_SEMCODE / "evaluation").glob("*.py")),
             _SEMCODE / "words.py", _SEMCODE / "index" / "tokenizer.py",
             _SEMCODE / "workspace" / "checks.py"]
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def pairs_dir() -> Path:
    """`<training cache>/pairs` (created)."""
    path = cache_root() / "pairs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def package_records(package: Package, archive: Path,
                    exclusions: Exclusions) -> list[dict[str, Any]]:
    """Every pair of one package as output records (with its gold body hash, `body`)."""
    files = read_package(archive, exclusions)
    chunks, pairs = package_pairs(files, package.name)
    negatives = hard_negatives(chunks, [(p.query, p.gold) for p in pairs])
    records = []
    for pair, negs in zip(pairs, negatives, strict=True):
        gold = chunks[pair.gold]
        records.append({
            "query": pair.query, "code": gold.embedding_text(),
            "negatives": [chunks[i].embedding_text() for i in negs],
            "negative_bodies": [body_hash(chunks[i]) for i in negs],
            "language": LANGUAGES[gold.language], "package": package.name,
            "source": pair.source.value, "path": gold.path, "name": gold.qualified_name,
            "body": body_hash(gold)})
    return records


def _cache_file(key: str, name: str) -> Path:
    path = pairs_dir() / "packages"
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{_safe(name)}-{key}.jsonl.gz"


def _write_records(path: Path, records: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=3) as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)  # atomic: another build sees the old file or the new one


def _read_records(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _work(task: tuple[Package, str, str]) -> tuple[str, int, str]:
    """One package in a worker: (name, pairs, error or "")."""
    package, archive, key = task
    try:
        records = package_records(package, Path(archive), Exclusions.default())
    except Exception as exc:  # noqa: BLE001 (one bad package must not stop the build)
        return package.name, 0, f"{type(exc).__name__}: {exc}"
    _write_records(_cache_file(key, package.name), records)
    return package.name, len(records), ""


def _bench_bodies(gen: str) -> set[str]:
    """Body hashes of every definition of the bench corpora (their archives must be in the
    bench cache already; missing ones are reported, never downloaded)."""
    from bench.quality.corpora import MANIFEST as BENCH_MANIFEST
    from bench.quality.corpora import cache_dir, is_doc_name, load_manifest, read_corpus

    key = hashlib.sha256(BENCH_MANIFEST.read_bytes() + gen.encode()).hexdigest()[:12]
    cached = pairs_dir() / f"bench-bodies-{key}.json"
    if cached.is_file():
        return set(json.loads(cached.read_text()))
    bodies: set[str] = set()
    for corpus in load_manifest():
        if not (cache_dir() / corpus["file"]).is_file():
            print(f"bench corpus {corpus['name']} is not in the bench cache: not deduplicated "
                  "against", file=sys.stderr)
            continue
        files = {p: t for p, t in read_corpus(corpus).items() if not is_doc_name(p)}
        bodies |= {body_hash(c) for c in stripped_chunks(files)[1] if c.is_symbol}
    cached.write_text(json.dumps(sorted(bodies)))
    return bodies


def validation_packages(packages: Iterable[Package]) -> set[str]:
    """~1 in `VALID_EVERY` packages of each language by a stable hash of the name, and at
    least one per language."""
    by_language: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for p in packages:
        h = int(hashlib.sha256(p.name.encode()).hexdigest()[:8], 16)
        by_language[p.language.value].append((h, p.name))
    valid: set[str] = set()
    for items in by_language.values():
        chosen = {name for h, name in items if h % VALID_EVERY == 0}
        valid |= chosen or {min(items)[1]}
    return valid


def merge(manifest: Manifest, results: dict[str, Path], bench: set[str], out: Path,
          manifest_sha: str) -> dict[str, Any]:
    """De-duplicate, split and write the output; returns the statistics."""
    valid_names = validation_packages(manifest.packages)
    seen: set[tuple[str, str]] = set()
    dropped: Counter[str] = Counter()
    counts: dict[str, Counter[str]] = {"train": Counter(), "valid": Counter()}
    packages: dict[str, Counter[str]] = {"train": Counter(), "valid": Counter()}
    outputs = {split: out / f".{split}.jsonl.gz.tmp" for split in counts}
    handles = {split: gzip.open(path, "wt", encoding="utf-8", compresslevel=5)  # noqa: SIM115
               for split, path in outputs.items()}
    try:
        for package in sorted(manifest.packages, key=lambda p: (p.language.value, p.name)):
            if package.name not in results:
                continue
            split = "valid" if package.name in valid_names else "train"
            kept = 0
            for r in _read_records(results[package.name]):
                if r["body"] in bench:
                    dropped["bench"] += 1
                    continue
                if (r["source"], r["body"]) in seen:
                    dropped["duplicate"] += 1
                    continue
                seen.add((r["source"], r["body"]))
                bodies = r.pop("negative_bodies")
                r["negatives"] = [n for n, b in zip(r["negatives"], bodies, strict=True)
                                  if b not in bench]
                del r["body"]
                handles[split].write(json.dumps(r, ensure_ascii=False) + "\n")
                counts[split][f"{r['language']}/{r['source']}"] += 1
                kept += 1
            packages[split][package.language.value] += 1
    finally:
        for f in handles.values():
            f.close()
    for split, path in outputs.items():
        path.replace(out / f"{split}.jsonl.gz")
    stats = {"manifest_sha256": manifest_sha,
             "pairs": {s: sum(c.values()) for s, c in counts.items()},
             "pairs_by_language_source": {s: dict(sorted(c.items())) for s, c in counts.items()},
             "packages": {s: dict(sorted(c.items())) for s, c in packages.items()},
             "duplicates_dropped": dropped["duplicate"],
             "bench_duplicates_dropped": dropped["bench"],
             "validation_packages": sorted(valid_names)}
    (out / "stats.json").write_text(json.dumps(stats, indent=1))
    (out / "manifest_sha256").write_text(manifest_sha + "\n")
    return stats


def build(manifest_path: Path = MANIFEST, out: Path | None = None, jobs: int | None = None,
          languages: set[str] | None = None, bench: bool = True) -> dict[str, Any]:
    """The whole build (module docstring); returns the statistics."""
    start = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - start:6.0f}s] {message}", file=sys.stderr, flush=True)

    manifest_sha = file_sha256(manifest_path)  # before a concurrent `select` rewrites it
    manifest = load(manifest_path)
    if languages:
        manifest = Manifest(tuple(p for p in manifest.packages if p.language.value in languages),
                            manifest.held_out, manifest.bench)
    out = out or pairs_dir()
    out.mkdir(parents=True, exist_ok=True)
    archives, errors = fetch_all(manifest.packages, progress=log)
    for _, error in sorted(errors.items()):
        log(f"fetch failed: {error}")
    gen = generator_hash()
    results: dict[str, Path] = {}
    todo: list[tuple[Package, str, str]] = []
    for p in manifest.packages:
        if p.name in archives:
            key = f"{p.sha256[:12]}-{gen}"
            cached = _cache_file(key, p.name)
            if cached.is_file():
                results[p.name] = cached
            else:
                todo.append((p, str(archives[p.name]), key))
    log(f"{len(results)} packages cached, {len(todo)} to build")
    todo.sort(key=lambda t: -Path(t[1]).stat().st_size)  # big ones first: even finish
    jobs = jobs or os.cpu_count() or 2
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        bench_bodies = pool.apply_async(_bench_bodies, (gen,)) if bench else None
        for n, (name, _, error) in enumerate(pool.imap_unordered(_work, todo), start=1):
            if error:
                log(f"{name}: skipped ({error})")
            else:
                results[name] = _cache_file(dict((t[0].name, t[2]) for t in todo)[name], name)
            if n % 25 == 0 or n == len(todo):
                log(f"built {n}/{len(todo)} packages")
        bench_set = bench_bodies.get() if bench_bodies else set()
    log(f"bench: {len(bench_set)} definition bodies excluded")
    stats = merge(manifest, results, bench_set, out, manifest_sha)
    log(f"wrote {stats['pairs']} pairs to {out} ({stats['duplicates_dropped']} duplicates, "
        f"{stats['bench_duplicates_dropped']} bench copies dropped)")
    return stats


def main(argv: list[str] | None = None) -> int:
    """Command line: build the pairs."""
    ap = argparse.ArgumentParser(prog="python -m training data", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--out", type=Path, default=None, help="default: <cache>/pairs")
    ap.add_argument("--only", default="", help="languages, comma-separated")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--no-bench", action="store_true", help="skip the bench de-duplication")
    args = ap.parse_args(argv)
    languages = {x for x in args.only.split(",") if x} or None
    build(args.manifest, args.out, args.jobs, languages, bench=not args.no_bench)
    return 0
