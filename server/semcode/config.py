"""Settings: defaults, the config file, CLI flags and LSP initializationOptions,
validated in one place (`Settings.from_mapping`), so a bad value fails clearly at the
door instead of deep inside the engine.

Sources, later wins: built-in defaults < user config file (`semcode/config.toml` in the
platform config dir) < workspace `.semcode.toml` < explicit overrides (flags, LSP).
Keys are the dataclass field names; LSP clients send them in camelCase, which is
accepted too (`maxFileBytes` == `max_file_bytes`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "semcode"

# "auto": Qwen3-Embedding/Reranker-0.6B (GGUF) where a GPU runs them, the static code
# model (and reranking only if it fits the budget) on a CPU; see models/auto.py.
DEFAULT_EMBEDDING_MODEL = "auto"
DEFAULT_RERANKER_MODEL = "auto"
MODEL_OFF_VALUES = frozenset({"", "off", "none"})


def model_is_off(value: str | None) -> bool:
    """Whether a model setting (`embedding_model`, `reranker_model`) turns that model off:
    empty, "off" or "none" in any case and spacing, or no value at all. The one test every
    layer (registry, backends, CLI, LSP) uses, so they cannot disagree."""
    return value is None or value.strip().lower() in MODEL_OFF_VALUES


class ConfigError(ValueError):
    """A setting has the wrong type or value; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    """Every setting semcode has, with its default; frozen, so a component can keep it.
    Build one with `from_mapping` or `load_settings` (they validate); a field's name is
    its key in config files, `--set` and the LSP `initializationOptions`."""

    # --- which files count (workspace/)
    max_file_bytes: int = 1_000_000
    exclude: tuple[str, ...] = ()  # extra gitignore-style patterns
    include_hidden: bool = False  # dot-files and dot-directories (other than .git, always skipped)
    # --- chunking
    max_chunk_lines: int = 120  # longer definitions are split with overlap
    chunk_overlap_lines: int = 12
    window_lines: int = 60  # line-window fallback size
    # Processes that read and chunk files during a large sync (index/preparing.py):
    # 0 = one per core (at most 8), 1 = all in the indexing process.
    index_workers: int = 0
    # --- models ("auto" picks by hardware; "off" disables; "hf:owner/repo/file.gguf",
    # "hf:owner/repo" (a static model2vec model) or a local file/folder)
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    reranker_model: str = DEFAULT_RERANKER_MODEL
    embedding_profile: str = "auto"  # a name from models.profiles, or auto-detect
    backend: str = "auto"  # auto | llama.cpp | mlx | remote | model2vec
    offline: bool = False  # never touch the network (HF_HUB_OFFLINE does the same)
    n_threads: int = 0  # 0: llama.cpp decides
    n_gpu_layers: int = -1  # -1: all layers on the GPU where there is one (Metal)
    embed_batch_tokens: int = 2048
    # --- remote inference servers (backend "remote", or "auto" when remote_url is set)
    remote_url: str = ""  # e.g. http://gpu-box:8080 (OpenAI-compatible /v1/embeddings)
    remote_reranker_url: str = ""  # "" -> remote_url (/v1/rerank or /rerank)
    remote_embedding_model: str = ""
    remote_reranker_model: str = ""
    remote_api_key_env: str = "SEMCODE_REMOTE_API_KEY"  # the variable's name, never the key
    remote_timeout_s: float = 30.0
    remote_batch_size: int = 32
    # --- retrieval
    rrf_k: int = 60
    lexical_weight: float = 1.0
    dense_weight: float = 1.0
    candidates: int = 100  # per first-stage retriever
    # BM25F fields (index/tokenizer.py); changes the index. Off: on the benchmark (whose
    # code has its doc comments stripped) the flat layout scored slightly higher.
    bm25_fields: bool = False
    # Fusion that adapts to the query (search/fusion.py `intent_weights`): identifier
    # lookups scale the dense weight by this, sentences scale the lexical weight.
    fusion_identifier_dense: float = 0.5
    fusion_natural_lexical: float = 1.0
    # --- ranking (search/ranking.py; each key switches one factor, 1.0/0.0 = off).
    # Values fitted on the benchmark's tune split (bench/quality/tune.py, lexical MRR@10);
    # container aggregation and per-file saturation measured as hurting, the path match
    # as no help (BM25F's path field already scores file names): off.
    ranking: bool = True  # the whole ranking step (off: the fused order, as in 0.1.0)
    ranking_depth: int = 100  # fused candidates the ranking step re-scores
    rank_base: str = "score"  # rrf | score: what the priors and boosts start from
    rank_prior_test: float = 0.2  # content-kind priors (multipliers; code is 1.0)
    rank_prior_example: float = 0.5
    rank_prior_docs: float = 0.2
    rank_prior_config: float = 0.5
    rank_prior_generated: float = 0.5
    rank_prior_declaration: float = 0.7
    rank_prior_reexport: float = 0.5
    rank_prior_module: float = 0.4  # module chunks (code between definitions)
    rank_prior_part: float = 0.5  # one part of a definition split for length
    rank_lift: float = 1.2  # a kind the query asks for ("tests for ...")
    rank_definition: float = 2.0  # defines an identifier the query names (additive)
    rank_definition_normalised: float = 0.8  # tier: equal up to case and `_`
    rank_definition_stem: float = 0.4  # tier: every word part of the name is in the query
    rank_definition_mixed: float = 0.5  # scale for sentences naming an identifier
    rank_definition_natural: float = 0.5  # scale for plain sentences (stem tier only)
    rank_definition_type: float = 0.0  # scale for types and constructors, in sentences
    # that name an identifier (they ask about a member)
    rank_path: float = 0.0  # share of query words in the file/directory name (additive)
    rank_container: float = 0.0  # a class/module with several member hits (additive)
    rank_file_decay: float = 1.0  # per further chunk from one file (1.0 = off)
    rank_file_keep: int = 3  # chunks of one file before the decay starts
    # --- reranking
    rerank: bool = True
    rerank_depth: int = 30  # at most this many fused candidates are reranked
    rerank_budget_ms: int = 4000  # fit the depth to this, from measured throughput
    rerank_doc_tokens: int = 384
    # The reranker's share of the final order (search/reranking.py: a weighted RRF of the
    # reranker's and the first stage's orders) and that fusion's k. Negative / 0: the
    # model's own values (a built-in model's fitted ones, else 0.5 and 10).
    rerank_weight: float = -1.0
    rerank_rrf_k: int = 0
    # --- storage
    index_dir: str = ""  # "" -> the user's cache dir; one sub-directory per workspace
    # One vector cache beside the index directories that every checkout shares
    # (index/shared_cache.py): a second worktree or clone embeds nothing known already.
    shared_embedding_cache: bool = True
    shared_embedding_cache_mb: int = 2048  # its cap; least recently used vectors go first

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_mapping(cls, data: Mapping[str, object], base: Settings | None = None
                     ) -> Settings:
        """Validate `data` (snake_case or camelCase keys) over `base` (or defaults)."""
        base = base or cls()
        known = {f.name: f for f in fields(cls)}
        # Any: each value has its own field's type (checked by `_coerce`), which mypy cannot
        # follow through `replace(**changes)`.
        changes: dict[str, Any] = {}
        for raw_key, value in data.items():
            key = _snake(raw_key)
            if key not in known:
                raise ConfigError(f"unknown setting {raw_key!r}")
            default = getattr(base, key)
            changes[key] = _coerce(key, value, default)
        settings = replace(base, **changes)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise `ConfigError` naming the first setting out of its range (the types were
        checked by `from_mapping`)."""
        positive = ("max_file_bytes", "max_chunk_lines", "window_lines", "rrf_k", "candidates",
                    "rerank_doc_tokens", "embed_batch_tokens", "remote_timeout_s",
                    "remote_batch_size", "shared_embedding_cache_mb")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"setting {name!r} must be > 0, got {getattr(self, name)!r}")
        if not 0 <= self.chunk_overlap_lines < self.max_chunk_lines:
            raise ConfigError("setting 'chunk_overlap_lines' must be >= 0 and < max_chunk_lines")
        for name in ("rerank_depth", "rerank_budget_ms", "n_threads", "rerank_rrf_k",
                     "index_workers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"setting {name!r} must be >= 0")
        if self.rerank_weight > 1:
            raise ConfigError("setting 'rerank_weight' must be <= 1 (negative: the model's own)")
        if self.lexical_weight < 0 or self.dense_weight < 0:
            raise ConfigError("fusion weights must be >= 0")
        for f in fields(self):
            if (f.name.startswith(("rank_", "fusion_")) or f.name == "ranking_depth") \
                    and f.name != "rank_base" and getattr(self, f.name) < 0:
                raise ConfigError(f"setting {f.name!r} must be >= 0")
        if self.rank_base not in ("rrf", "score"):
            raise ConfigError(f"setting 'rank_base' must be rrf or score, got {self.rank_base!r}")
        if self.rank_file_keep < 1:
            raise ConfigError("setting 'rank_file_keep' must be >= 1")
        if not 0 < self.rank_file_decay <= 1:
            raise ConfigError("setting 'rank_file_decay' must be > 0 and <= 1")
        if self.backend not in ("auto", "llama.cpp", "mlx", "remote", "model2vec"):
            raise ConfigError(f"setting 'backend' must be auto, llama.cpp, mlx, remote or "
                              f"model2vec, got {self.backend!r}")

    @property
    def offline_mode(self) -> bool:
        """Whether models may not be downloaded: the `offline` setting or the Hugging Face
        hub's own `HF_HUB_OFFLINE` variable."""
        return self.offline or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")


def user_config_path() -> Path:
    """The user's `config.toml` in the platform's config directory (read unless
    `SEMCODE_CONFIG` or `--config` names another file)."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def cache_dir() -> Path:
    """Where indexes live unless `index_dir` says otherwise (SEMCODE_CACHE_DIR wins)."""
    env = os.environ.get("SEMCODE_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir(APP_NAME))


def load_settings(workspace: Path | None = None, overrides: Mapping[str, object] | None = None,
                  config_file: Path | None = None) -> Settings:
    """Defaults < user config < workspace `.semcode.toml` < overrides."""
    settings = Settings()
    user_file = config_file or Path(os.environ.get("SEMCODE_CONFIG", user_config_path()))
    sources: list[Path] = [user_file]
    if workspace is not None:
        sources.append(workspace / ".semcode.toml")
    for path in sources:
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: {exc}") from None
            try:
                settings = Settings.from_mapping(data, settings)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
    if overrides:
        settings = Settings.from_mapping(overrides, settings)
    return settings


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower().replace("-", "_")


def _coerce(key: str, value: object, default: object) -> object:
    """`value` (from TOML, JSON or a command line string) as the type of the setting's
    `default`; a `ConfigError` naming `key` when it cannot be read as one."""
    expected = type(default)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(default, tuple):
        if isinstance(value, str):
            return tuple(v for v in value.split(",") if v.strip())
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif isinstance(default, str) and isinstance(value, str):
        return value
    raise ConfigError(f"setting {key!r} expects {expected.__name__}, got {value!r}")


__all__ = ["Settings", "ConfigError", "load_settings", "cache_dir", "user_config_path",
           "DEFAULT_EMBEDDING_MODEL", "DEFAULT_RERANKER_MODEL", "field"]
