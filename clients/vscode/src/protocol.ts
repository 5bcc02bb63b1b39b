/**
 * Types and method names mirroring docs/protocol.md (protocol version 1).
 *
 * This file is the client's copy of the contract; it deliberately has no runtime
 * dependency on `vscode` so unit tests and the integration test can import it as is.
 * When docs/protocol.md changes, this file changes in the same commit.
 */

export const PROTOCOL_VERSION = 1;

/** JSON-RPC method names. */
export const Methods = {
  search: 'semcode/search',
  searchRefined: 'semcode/searchRefined',
  cancelSearch: 'semcode/cancelSearch',
  related: 'semcode/related',
  status: 'semcode/status',
} as const;

/**
 * Commands the server executes through `workspace/executeCommand`.
 *
 * vscode-languageclient registers a VS Code command under each of these ids when the
 * server announces them, so the extension's own UI commands must use other ids
 * (`semcode.showStatus`, `semcode.reindexWorkspace`, …) or registration would collide.
 */
export const ServerCommands = {
  search: 'semcode.search',
  reindex: 'semcode.reindex',
  status: 'semcode.status',
} as const;

/** LSP error codes the client treats specially. */
export const ErrorCodes = {
  InvalidParams: -32602,
  MethodNotFound: -32601,
  RequestCancelled: -32800,
} as const;

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export type SearchMode = 'hybrid' | 'lexical' | 'dense';

export interface SearchParams {
  query: string;
  limit?: number;
  mode?: SearchMode;
  languages?: string[];
  paths?: string[];
  kinds?: number[];
  /** Content kinds to keep (`code`, `test`, `docs`, ...); empty or absent: all. */
  contents?: ContentKind[];
  rerank?: boolean;
}

/** What a chunk is, decided at index time (docs/protocol.md "Content kinds"). */
export type ContentKind =
  | 'code'
  | 'test'
  | 'example'
  | 'docs'
  | 'config'
  | 'generated'
  | 'declaration'
  | 'reexport';

export interface StageScore {
  rank: number;
  score: number;
  /** The ranking stage only: the priors and boosts that moved the item. */
  factors?: Record<string, number>;
}

export interface SearchItem {
  uri: string;
  /** Relative to its workspace folder. */
  path: string;
  workspaceFolder: string;
  /** The whole symbol; `end` is the start of the line after it. */
  range: Range;
  /** The symbol's name (or the first line when the chunk has no name). */
  selectionRange: Range;
  name: string;
  /** LSP SymbolKind (1-based). */
  kind: number;
  containerName: string;
  language: string;
  /** Absent from servers older than content kinds: treat as `code`. */
  content?: ContentKind;
  preview: string;
  score: number;
  stages?: Partial<Record<'lexical' | 'dense' | 'fused' | 'ranking' | 'rerank', StageScore>>;
}

export interface SearchResult {
  searchId: string;
  /** Best first: clients keep this order. */
  items: SearchItem[];
  reranked: boolean;
  rerankPending: boolean;
  mode?: SearchMode;
  notices?: string[];
  timingsMs?: Record<string, number>;
}

export interface SearchRefinedParams {
  searchId: string;
  items: SearchItem[];
  reranked: boolean;
  cancelled?: boolean;
  error?: string;
  timingsMs?: Record<string, number>;
}

export interface CancelSearchParams {
  searchId: string;
}

export interface RelatedParams {
  textDocument: { uri: string };
  position: Position;
  limit?: number;
}

export type ServerState = 'starting' | 'indexing' | 'embedding' | 'ready' | 'error';
export type ModelState = 'loaded' | 'loading' | 'off' | 'missing' | 'error' | 'not loaded';

export interface ModelStatus {
  state: ModelState;
  identity?: string;
  backend?: string;
  device?: string;
  path?: string;
  dims?: number;
  message?: string;
  /** the embedder is the model shipped inside semcode (`embedding_model = "builtin"`) */
  builtin?: boolean;
  /** one line on the built-in model's measured quality */
  quality?: string;
}

export interface WorkspaceProgress {
  stage: string;
  done: number;
  total: number;
  message: string;
}

export interface WorkspaceStatus {
  root: string;
  workspaceFolder?: string;
  /** Per-folder state; `error` says why when it is "error". */
  state?: ServerState;
  error?: string;
  embeddedThisSession?: number;
  indexBytes?: number;
  indexDir?: string;
  files?: number;
  chunks?: number;
  embedded?: number;
  pendingEmbeddings?: number;
  skippedFiles?: number;
  progress?: WorkspaceProgress | null;
}

export interface Status {
  version?: string;
  protocolVersion?: number;
  state: ServerState;
  degraded?: string[];
  models?: { embedder?: ModelStatus; reranker?: ModelStatus };
  workspaces?: WorkspaceStatus[];
}

export interface ReindexArgs {
  full?: boolean;
}
