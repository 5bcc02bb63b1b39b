"""Where a model's files come from: a `ModelSpec` (the parsed setting) resolved to a local
file or folder, from the path itself, the package (`builtin`), or the Hugging Face hub's
cache (downloaded into it when allowed). Every failure is one `ModelError` line; a model
that is simply not on this machine is a `ModelMissing`.

Its own module so that the factory (which builds models from resolved files) and the
registry (which holds them) both use it without needing each other.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from semcode.config import model_is_off
from semcode.kinds import Role
from semcode.messages import first_line
from semcode.models.base import ModelError, ModelMissing
from semcode.models.builtin import (
    EMBEDDER_DIR,
    RERANKER_DIR,
    RERANKER_FILE,
    embedder_folder,
    is_builtin,
    reranker_file,
)

HF_PREFIX = "hf:"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed `embedding_model`/`reranker_model` setting."""

    raw: str
    repo_id: str | None = None  # hub models
    filename: str | None = None
    local_path: Path | None = None  # local files

    @property
    def off(self) -> bool:
        """The setting turns this model off (`off`, `none`, empty)."""
        return model_is_off(self.raw)

    @classmethod
    def parse(cls, raw: str, role: Role = Role.EMBEDDER) -> ModelSpec:
        """Read a setting: `off`, `builtin` (the shipped model of `role`),
        `hf:OWNER/REPO[/FILE]`, or a local file or folder."""
        text = raw.strip()
        if model_is_off(text):
            return cls(raw=text)
        if is_builtin(text) and role == Role.RERANKER:
            gguf = reranker_file()
            if gguf is None:  # not shipped yet: missing, as a model not downloaded is
                raise ModelMissing(f"model {raw!r}: this installation ships no built-in "
                                   f"reranker (expected {RERANKER_DIR / RERANKER_FILE})")
            return cls(raw=text, local_path=gguf)
        if is_builtin(text):
            folder = embedder_folder()
            if folder is None:
                raise ModelError(f"model {raw!r}: this installation ships no built-in model "
                                 f"(expected {EMBEDDER_DIR})")
            return cls(raw=text, local_path=folder)
        if text.startswith(HF_PREFIX):
            parts = text[len(HF_PREFIX):].split("/")
            if len(parts) < 2 or not all(parts):
                raise ModelError(f"model {raw!r}: expected hf:OWNER/REPO/FILE.gguf "
                                 f"or hf:OWNER/REPO")
            # hf:OWNER/REPO names a whole repository (a static or MLX model folder).
            return cls(raw=text, repo_id="/".join(parts[:2]),
                       filename="/".join(parts[2:]) or None)
        return cls(raw=text, local_path=Path(os.path.expanduser(text)))


def resolve_model_file(spec: ModelSpec, offline: bool, download: bool = True) -> Path:
    """The local file for a spec: a local path as is, a hub file from the hub cache, or
    downloaded into it (with huggingface_hub's progress bar) when allowed."""
    if spec.local_path is not None:
        if not spec.local_path.exists():
            raise ModelMissing(f"model file not found: {spec.local_path}")
        return spec.local_path
    if not (spec.repo_id and spec.filename):
        raise ModelError(f"model {spec.raw}: expected hf:OWNER/REPO/FILE.gguf")
    return _hub_file(spec, spec.filename, offline, download)


def _hub_file(spec: ModelSpec, filename: str, offline: bool, download: bool) -> Path:
    """One file of a hub repository: from the cache, else downloaded (with
    huggingface_hub's progress bar) when allowed. Every failure is one ModelError line."""
    assert spec.repo_id
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import LocalEntryNotFoundError, RemoteEntryNotFoundError

    # The cache first, read from disk alone: `hf_hub_download(local_files_only=True)`
    # would still build request headers, and huggingface_hub (2.x) fetches its agent
    # registry from the hub for those (a request per process, up to 3 s where the hub
    # is unreachable), so a cached model must never go through it.
    try:
        cached = try_to_load_from_cache(spec.repo_id, filename)
    except Exception as exc:  # noqa: BLE001 - any hub error becomes one line
        raise ModelError(f"model {spec.raw}: {first_line(exc, with_type=True)}") from None
    if isinstance(cached, str):
        return Path(cached)
    if cached is not None:  # the hub said, and the cache remembers, there is no such file
        raise _NoSuchFile(filename)
    if offline or not download:
        why = "offline mode" if offline else "not downloaded yet"
        raise ModelMissing(f"model {spec.raw} is not in the cache ({why}; "
                         f"run `semcode models --download`)")
    unreachable = _hub_unreachable()
    if unreachable:
        raise ModelMissing(f"cannot download {spec.raw}: {unreachable}")
    _check_hub_file(spec, filename)
    _say_downloading(spec)
    try:
        return Path(hf_hub_download(spec.repo_id, filename, endpoint=_hub_endpoint()))
    except RemoteEntryNotFoundError:
        raise _NoSuchFile(filename) from None
    except LocalEntryNotFoundError as exc:  # the hub failed; its own error is the cause
        cause = exc.__cause__ or exc
        why = first_line(cause, with_type=True)
        raise ModelMissing(f"cannot download {spec.raw}: {why}") from None
    except Exception as exc:  # noqa: BLE001
        why = first_line(exc, with_type=True)
        raise ModelMissing(f"cannot download {spec.raw}: {why}") from None


def _check_hub_file(spec: ModelSpec, filename: str) -> None:
    """One HEAD for the file, without retries, before `hf_hub_download`: a file the
    repository lacks (another layout may have it), a hub that answers with an error
    (an outage: huggingface_hub would retry for ~25 s per file, logging each retry) or
    a server that is no hub (a captive portal, a wrong HF_ENDPOINT) is one line at once.
    The hub's "no such file" is left to `hf_hub_download`, which remembers it in the
    cache (so an offline run can pick another layout) and needs no retries for it."""
    assert spec.repo_id
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import RemoteEntryNotFoundError

    endpoint = _hub_endpoint()
    try:
        meta = get_hf_file_metadata(hf_hub_url(spec.repo_id, filename, endpoint=endpoint))
    except RemoteEntryNotFoundError:
        return
    except Exception as exc:  # noqa: BLE001 - any hub or network error becomes one line
        why = first_line(exc, with_type=True)
        raise ModelMissing(f"cannot download {spec.raw}: {why}") from None
    if not (meta.commit_hash and meta.etag):
        host = urlparse(endpoint).hostname or endpoint
        raise ModelMissing(f"cannot download {spec.raw}: {host} does not answer like a "
                           f"Hugging Face hub (check HF_ENDPOINT and any proxy)")


class _NoSuchFile(ModelError):
    """The repository has no such file (another layout may have it)."""


def resolve_model_folder(spec: ModelSpec, offline: bool, download: bool = True) -> Path:
    """The local folder of a static (model2vec) model: a local folder as is, or the hub
    repository's model files (config, weights, tokenizer) from the cache or downloaded,
    like a GGUF file is. The folder's layout is checked by the loader."""
    from semcode.models.static import LAYOUTS

    if spec.local_path is not None:
        if not spec.local_path.is_dir():
            raise ModelMissing(f"model folder not found: {spec.local_path}")
        return spec.local_path
    if not spec.repo_id or spec.filename:
        raise ModelError(f"model {spec.raw}: a static model is a repository (hf:OWNER/REPO) "
                         f"or a folder")
    first: ModelError | None = None
    for layout in LAYOUTS:  # model2vec's own layout first, then sentence-transformers'
        try:
            paths = [_hub_file(spec, name, offline, download) for name in layout[:3]]
        except _NoSuchFile as exc:
            first = first or ModelError(f"model {spec.raw}: no {exc} in the repository")
            continue
        config, name = paths[0], layout[0]
        return Path(str(config)[: -len(name)].rstrip("/\\"))  # the snapshot folder
    assert first is not None
    raise first


_announced: set[str] = set()


def _say_downloading(spec: ModelSpec) -> None:
    """One line on stderr (once per model and process) before the first byte: where the
    model comes from and where it goes. huggingface_hub's progress bars follow on a
    terminal; where stderr is a pipe or a log (an editor's output panel) they are hidden,
    and this line is what says why the first run waits."""
    if spec.raw in _announced:
        return
    _announced.add(spec.raw)
    from huggingface_hub import constants

    host = urlparse(_hub_endpoint()).hostname or "the hub"
    print(f"semcode: downloading {spec.raw} from {host} (first use; cached in "
          f"{constants.HF_HUB_CACHE})", file=sys.stderr, flush=True)


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


_hub_probe: dict[str, str | None] = {}


def _hub_unreachable() -> str | None:
    """Why the hub cannot be reached, or None. One quick TCP connect instead of
    huggingface_hub's retry loop (~25 s of retries and log noise on a machine with no
    network), remembered for the life of the process."""
    endpoint = _hub_endpoint()
    if endpoint not in _hub_probe:
        host, port, label = _probe_target(endpoint)
        try:
            socket.create_connection((host, port), timeout=5).close()
            _hub_probe[endpoint] = None
        except OSError as exc:
            _hub_probe[endpoint] = f"{label} is unreachable ({exc.strerror or exc})"
    return _hub_probe[endpoint]


def _probe_target(endpoint: str) -> tuple[str, int, str]:
    """(host, port, what to call it) of the hub's first connection: the hub itself, or the
    proxy the environment names for it (HTTPS_PROXY/HTTP_PROXY/ALL_PROXY, NO_PROXY
    honoured; huggingface_hub's HTTP client reads the same variables), so a machine that
    reaches the hub only through a proxy is not told the hub is unreachable."""
    import urllib.request

    url = urlparse(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme or "https") or \
        urllib.request.getproxies().get("all")
    if proxy and not urllib.request.proxy_bypass(host):
        purl = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        if purl.hostname:
            default = 443 if purl.scheme == "https" else 1080 if "socks" in purl.scheme else 80
            pport = purl.port or default
            return purl.hostname, pport, f"the proxy {purl.hostname}:{pport} (for {host})"
    return host, port, host


def cached_model_file(spec: ModelSpec) -> Path | None:
    """The file (or a static model's folder) if it is already on disk (never touches the
    network)."""
    try:
        if spec.repo_id and not spec.filename or (
                spec.local_path is not None and spec.local_path.is_dir()):
            return resolve_model_folder(spec, offline=True, download=False)
        return resolve_model_file(spec, offline=True, download=False)
    except ModelError:
        return None

