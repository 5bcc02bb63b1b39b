/**
 * Extension settings: which `semcode.*` keys belong to the server, and how they are
 * turned into `initializationOptions` / `workspace/didChangeConfiguration` payloads.
 *
 * The server rejects unknown keys (docs/protocol.md, "Settings"), so the client must
 * never forward its own keys (`semcode.server.*`, `semcode.search.*`). That is also why
 * the LanguageClient's `synchronize.configurationSection` is not used: it would send
 * the whole `semcode` section.
 */
import type { SearchMode } from './protocol';

/** Every key of docs/protocol.md "Settings", in the order of that table. */
export const SERVER_SETTING_KEYS = [
  'embeddingModel',
  'rerankerModel',
  'embeddingProfile',
  'backend',
  'offline',
  'nThreads',
  'nGpuLayers',
  'rerank',
  'rerankDepth',
  'rerankBudgetMs',
  'rerankDocTokens',
  'rerankWeight',
  'rerankRrfK',
  'rrfK',
  'lexicalWeight',
  'denseWeight',
  'ranking',
  'bm25Fields',
  'candidates',
  'maxFileBytes',
  'exclude',
  'includeHidden',
  'maxChunkLines',
  'chunkOverlapLines',
  'windowLines',
  'indexWorkers',
  'embedBatchTokens',
  'indexDir',
  'sharedEmbeddingCache',
  'sharedEmbeddingCacheMb',
  'remoteUrl',
  'remoteRerankerUrl',
  'remoteEmbeddingModel',
  'remoteRerankerModel',
  'remoteApiKeyEnv',
  'remoteTimeoutS',
  'remoteBatchSize',
] as const;

export type ServerSettingKey = (typeof SERVER_SETTING_KEYS)[number];
export type ServerSettings = Partial<Record<ServerSettingKey, unknown>>;

/** The slice of `vscode.WorkspaceConfiguration` this module needs (keeps it testable). */
export interface ConfigReader {
  get<T>(key: string): T | undefined;
  inspect?(key: string):
    | { globalValue?: unknown; workspaceValue?: unknown; workspaceFolderValue?: unknown }
    | undefined;
}

/**
 * The server settings: what the user set (in any scope), and `null` for every key they
 * did not set. `null` means "the server's default" (docs/protocol.md, "Settings"), which
 * matters twice: the server layers its own config file and each folder's `.semcode.toml`
 * *under* these settings, so sending our contributed defaults would override them; and
 * `didChangeConfiguration` replaces key by key, so a setting the user removes must be
 * sent (as `null`) to go back to the default.
 */
export function serverSettings(config: ConfigReader): ServerSettings {
  const out: ServerSettings = {};
  for (const key of SERVER_SETTING_KEYS) {
    out[key] = isSet(config, key) ? (config.get<unknown>(key) ?? null) : null;
  }
  return out;
}

function isSet(config: ConfigReader, key: string): boolean {
  if (!config.inspect) return config.get(key) !== undefined;
  const i = config.inspect(key);
  return i !== undefined && (i.globalValue !== undefined || i.workspaceValue !== undefined || i.workspaceFolderValue !== undefined);
}

/** Payload for `workspace/didChangeConfiguration` (protocol: `settings.semcode`). */
export function didChangeConfigurationParams(config: ConfigReader): { settings: { semcode: ServerSettings } } {
  return { settings: { semcode: serverSettings(config) } };
}

/** Launch settings (`semcode.server.*`): not sent to the server. */
export interface LaunchSettings {
  path: string;
  args: string[];
  pythonPath: string;
  installSource: string;
}

export function launchSettings(config: ConfigReader): LaunchSettings {
  const args = config.get<unknown>('server.args');
  return {
    path: str(config.get('server.path')),
    args: Array.isArray(args) ? args.map(String) : ['serve'],
    pythonPath: str(config.get('server.pythonPath')),
    installSource: str(config.get('server.installSource')) || 'semcode',
  };
}

/** Client-side search settings (`semcode.search.*`). */
export interface SearchSettings {
  limit: number;
  debounceMs: number;
  mode: SearchMode;
}

export function searchSettings(config: ConfigReader): SearchSettings {
  const mode = config.get<string>('search.mode');
  return {
    limit: clampInt(config.get('search.limit'), 1, 200, 30),
    debounceMs: clampInt(config.get('search.debounceMs'), 0, 2000, 200),
    mode: mode === 'lexical' || mode === 'dense' ? mode : 'hybrid',
  };
}

/** True when a configuration change needs a server restart rather than a settings push. */
export function affectsLaunch(affects: (section: string) => boolean): boolean {
  return affects('semcode.server');
}

/** True when a configuration change must be pushed to the running server. */
export function affectsServer(affects: (section: string) => boolean): boolean {
  return SERVER_SETTING_KEYS.some((key) => affects(`semcode.${key}`));
}

function str(value: unknown): string {
  return typeof value === 'string' ? value.trim() : '';
}

function clampInt(value: unknown, min: number, max: number, fallback: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, Math.round(value)));
}
