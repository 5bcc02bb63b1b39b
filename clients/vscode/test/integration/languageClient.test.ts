/**
 * The real vscode-languageclient `LanguageClient` (with the extension's own options)
 * against the real `semcode serve` over stdio, VS Code API mocked by test/stub.
 * Lexical-only first; then, with the tiny random-weight models, the two search phases.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { createLanguageClient, fetchStatus, LspSearchBackend, pushSettings } from '../../src/languageClient';
import { EditorNavigator } from '../../src/navigator';
import { Methods, type SearchRefinedParams, type SearchResult, type Status } from '../../src/protocol';
import { SearchQuickPick } from '../../src/searchQuickPick';
import type { ServerCommand } from '../../src/serverLauncher';
import { testing } from '../stub/vscode';
import { makeWorkspace } from './fixture';
import { repoRoot, serverCommand, serverUnavailable, venvPython } from './serverCommand';

const server = serverCommand();
const unavailable = serverUnavailable(server);
if (unavailable) console.warn(`integration tests skipped: ${unavailable}`);

interface Session {
  client: LanguageClient;
  backend: LspSearchBackend;
  statuses: Status[];
  refined: SearchRefinedParams[];
  initError: unknown;
}

function configure(root: string, settings: Record<string, unknown>): void {
  testing.reset();
  testing.configuration = Object.fromEntries(Object.entries(settings).map(([k, v]) => [`semcode.${k}`, v]));
  testing.workspaceFolders = [{ uri: vscode.Uri.file(root) as never, name: path.basename(root), index: 0 }];
}

function newSession(cmd: ServerCommand): Session {
  const s = { statuses: [], refined: [], initError: undefined } as unknown as Session;
  let client: LanguageClient | undefined;
  s.backend = new LspSearchBackend(async () => client!);
  client = createLanguageClient(cmd, {
    config: () => vscode.workspace.getConfiguration('semcode'),
    onStatus: (st) => s.statuses.push(st),
    onRefined: (p) => {
      s.refined.push(p);
      s.backend.fireRefined(p);
    },
    onInitializeFailed: (e) => {
      s.initError = e;
    },
  });
  s.client = client;
  return s;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 90000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function waitIndexed(client: LanguageClient, embedded: boolean): Promise<Status> {
  return waitFor(`the index (${embedded ? 'with embeddings' : 'lexical'})`, async () => {
    const st = await fetchStatus(client);
    const ws = st.workspaces?.[0];
    const done = st.state === 'ready' && ws !== undefined && (ws.chunks ?? 0) > 0;
    return done && (!embedded || ((ws.embedded ?? 0) > 0 && (ws.pendingEmbeddings ?? 0) === 0)) ? st : undefined;
  });
}

function search(client: LanguageClient, query: string, extra: Record<string, unknown> = {}): Promise<SearchResult> {
  return client.sendRequest<SearchResult>(Methods.search, { query, limit: 10, ...extra });
}

describe.skipIf(!!unavailable)('LanguageClient ↔ semcode serve (lexical only)', () => {
  let ws: ReturnType<typeof makeWorkspace>;
  let s: Session;

  beforeAll(async () => {
    ws = makeWorkspace();
    configure(ws.root, { embeddingModel: 'off', rerankerModel: 'off', indexDir: ws.indexDir });
    s = newSession(server);
    await s.client.start();
    await waitIndexed(s.client, false);
  });

  afterAll(async () => {
    await s?.client.stop(5000).catch(() => undefined);
    ws?.cleanup();
  });

  it('initializes with the protocol capabilities', () => {
    const caps = s.client.initializeResult?.capabilities as Record<string, any>;
    expect(caps.experimental?.semcode?.protocolVersion).toBe(1);
    expect(caps.workspaceSymbolProvider).toBeTruthy();
    expect(caps.executeCommandProvider?.commands).toEqual(expect.arrayContaining(['semcode.search', 'semcode.reindex', 'semcode.status']));
  });

  it('reports status: models off, degraded, the workspace indexed', async () => {
    // The server resolves models lazily: `off` reads "not loaded" (and nothing is
    // degraded) until the first search has tried the model.
    await search(s.client, 'warm up');
    const st = await fetchStatus(s.client);
    expect(st.protocolVersion).toBe(1);
    expect(st.models?.embedder?.state).toBe('off');
    expect(st.degraded?.length).toBeGreaterThan(0);
    expect(st.workspaces?.[0]?.files).toBeGreaterThanOrEqual(4);
    expect(s.statuses.length).toBeGreaterThan(0);
  });

  it('answers semcode/search with ranked, well-formed items', async () => {
    const r = await search(s.client, 'refresh expired tokens');
    expect(typeof r.searchId).toBe('string');
    expect(r.rerankPending).toBe(false);
    expect(r.mode).toBe('lexical');
    expect(r.notices?.join(' ')).toMatch(/semantic|embedding/i);
    const top = r.items[0]!;
    expect(top.name).toBe('refresh_expired_tokens');
    expect(top.containerName).toBe('TokenStore');
    expect(top.path).toBe('auth/tokens.py');
    expect(top.kind).toBe(6);
    expect(top.uri).toBe(vscode.Uri.file(path.join(ws.root, 'auth/tokens.py')).toString());
    expect(top.selectionRange.start.line).toBe(10);
    expect(top.preview).toContain('refresh_expired_tokens');
    const scores = r.items.map((i) => i.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
  });

  it('drives the QuickPick end to end: type, Enter, the editor opens the symbol', async () => {
    const nav = new EditorNavigator();
    const sqp = new SearchQuickPick(s.backend, nav, { limit: 10, debounceMs: 50, mode: 'hybrid' });
    sqp.show();
    const qp = testing.lastQuickPick<any>();
    qp.type('format money currency symbol');
    await waitFor('results in the QuickPick', () => (qp.items.length > 0 ? true : undefined), 20000);
    expect(qp.items[0].result.name).toBe('formatCurrency');
    expect(qp.items[0].description).toContain('web/format.ts:7');
    qp.accept();
    await waitFor('the editor to open', () => testing.shown.find((c) => !c.options.preserveFocus));
    const opened = testing.shown.find((c) => !c.options.preserveFocus)!;
    expect(String(opened.target)).toBe(vscode.Uri.file(path.join(ws.root, 'web/format.ts')).toString());
    expect(opened.options.selection.start.line).toBe(6);
  });

  it('cancels a superseded search without breaking the connection', async () => {
    const cts = new vscode.CancellationTokenSource();
    const first = s.client.sendRequest(Methods.search, { query: 'retry backoff' }, cts.token as never);
    cts.cancel();
    await first.then(
      () => undefined,
      () => undefined,
    );
    const r = await search(s.client, 'retry request with backoff delay');
    expect(r.items[0]?.name).toBe('retry_with_backoff');
  });

  it('sees unsaved edits sent through document sync', async () => {
    const file = path.join(ws.root, 'util/strings.go');
    const text = fs.readFileSync(file, 'utf8') + '\n// ZebraQuartzFrobnicate counts striped horses.\nfunc ZebraQuartzFrobnicate() int { return 3 }\n';
    await s.client.sendNotification('textDocument/didOpen', {
      textDocument: { uri: vscode.Uri.file(file).toString(), languageId: 'go', version: 1, text },
    });
    const hit = await waitFor('the unsaved symbol', async () => {
      const r = await search(s.client, 'zebra quartz frobnicate');
      return r.items.find((i) => i.name === 'ZebraQuartzFrobnicate');
    }, 20000);
    expect(hit.path).toBe('util/strings.go');
  });

  it('accepts settings changes (didChangeConfiguration) and keeps serving', async () => {
    testing.configuration['semcode.rrfK'] = 30;
    await pushSettings(s.client, vscode.workspace.getConfiguration('semcode'));
    // The server re-indexes after a settings change; results return once it is ready.
    await new Promise((r) => setTimeout(r, 300));
    await waitIndexed(s.client, false);
    const r = await search(s.client, 'shopping cart total price');
    expect(r.items.map((i) => i.name)).toContain('totalPrice');
  });

  it('answers workspace/symbol with the same engine', async () => {
    const symbols = (await s.client.sendRequest('workspace/symbol', { query: 'parse comma separated values' })) as any[];
    expect(symbols[0]?.name).toBe('ParseCsvLine');
  });
});

describe.skipIf(!!unavailable)('LanguageClient ↔ semcode serve: invalid settings', () => {
  it('fails initialize with InvalidParams naming the setting', async () => {
    const ws = makeWorkspace();
    try {
      configure(ws.root, { embeddingModel: 'off', rerankerModel: 'off', indexDir: ws.indexDir, rrfK: 'sixty' });
      const s = newSession(server);
      // vscode-languageclient 9 calls `void this.stop()` on a failed initialize, which
      // rejects ("Client is not running and can't be stopped") with nobody to catch it.
      const swallow = (e: unknown) => {
        if (!String((e as Error)?.message).includes("can't be stopped")) throw e;
      };
      process.on('unhandledRejection', swallow);
      await expect(s.client.start()).rejects.toBeDefined();
      await new Promise((r) => setTimeout(r, 500));
      process.off('unhandledRejection', swallow);
      // The server names the setting in snake_case (`rrf_k`), though the client sent `rrfK`.
      expect(String((s.initError as Error)?.message ?? s.initError)).toMatch(/rrfK|rrf_k/);
      expect((s.initError as { code?: number }).code).toBe(-32602);
      await s.client.dispose().catch(() => undefined);
    } finally {
      ws.cleanup();
    }
  });
});

function tinyModels(): { embedder: string; reranker: string } | string {
  const script = path.join(repoRoot, 'tests', 'tiny_models.py');
  if (!fs.existsSync(script)) return 'tests/tiny_models.py is missing';
  try {
    const dir = path.join(os.tmpdir(), 'semcode-tiny-models');
    const out = execFileSync(venvPython(), [script, '--json', dir], { encoding: 'utf8', timeout: 120000 });
    return JSON.parse(out.trim().split('\n').pop()!);
  } catch (err) {
    return `tiny models unavailable: ${(err as Error).message.split('\n')[0]}`;
  }
}

const models = unavailable ? unavailable : tinyModels();
if (typeof models === 'string' && !unavailable) console.warn(`two-phase tests skipped: ${models}`);

describe.skipIf(typeof models === 'string')('LanguageClient ↔ semcode serve (tiny models: two phases)', () => {
  let ws: ReturnType<typeof makeWorkspace>;
  let s: Session;

  beforeAll(async () => {
    const m = models as { embedder: string; reranker: string };
    ws = makeWorkspace();
    configure(ws.root, { embeddingModel: m.embedder, rerankerModel: m.reranker, indexDir: ws.indexDir, offline: true, rerankBudgetMs: 60000 });
    s = newSession(server);
    await s.client.start();
    await waitIndexed(s.client, true);
  });

  afterAll(async () => {
    await s?.client.stop(5000).catch(() => undefined);
    ws?.cleanup();
  });

  it('sends the first stage, then semcode/searchRefined with the reranked list for the same searchId', async () => {
    const r = await search(s.client, 'refresh expired tokens', { rerank: true });
    expect(r.reranked).toBe(false);
    expect(r.rerankPending).toBe(true);
    expect(r.mode).toBe('hybrid');
    const refined = await waitFor('semcode/searchRefined', () => s.refined.find((p) => p.searchId === r.searchId), 60000);
    expect(refined.reranked).toBe(true);
    expect(refined.items.length).toBeGreaterThan(0);
    // The reranker sees up to rerankDepth candidates, so it may surface ones beyond the
    // first page; every item carries its rerank stage, best first, no duplicates.
    const key = (i: { uri: string; range: { start: { line: number } } }) => `${i.uri}:${i.range.start.line}`;
    expect(new Set(refined.items.map(key)).size).toBe(refined.items.length);
    expect(refined.items.length).toBeLessThanOrEqual(10);
    for (const i of refined.items) expect(i.stages?.rerank).toBeDefined();
    const scores = refined.items.map((i) => i.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
  });

  it('reports both models loaded once used', async () => {
    const st = await fetchStatus(s.client);
    expect(st.models?.embedder?.state).toBe('loaded');
    expect(st.models?.reranker?.state).toBe('loaded');
    expect(st.degraded ?? []).toEqual([]);
  });

  it('swaps the QuickPick to the reranked list', async () => {
    const sqp = new SearchQuickPick(s.backend, { preview: async () => {}, open: async () => {}, restore: async () => {} }, {
      limit: 10,
      debounceMs: 10,
      mode: 'hybrid',
    });
    sqp.show();
    const qp = testing.lastQuickPick<any>();
    qp.type('send a request again after a delay');
    await waitFor('the reranked title', () => (String(qp.title).includes('reranked') ? true : undefined), 60000);
    expect(qp.itemHistory.length).toBeGreaterThanOrEqual(2);
    expect(qp.busy).toBe(false);
    sqp.dispose();
  });

  it('a new search cancels the pending rerank of the previous one', async () => {
    s.refined.length = 0;
    const a = await search(s.client, 'token store', { rerank: true });
    const b = await search(s.client, 'shopping cart', { rerank: true });
    const refinedA = await waitFor('refinement of the superseded search', () => s.refined.find((p) => p.searchId === a.searchId), 60000);
    // Either it was cancelled, or it had already finished: never silence.
    expect(refinedA.cancelled === true || refinedA.reranked === true).toBe(true);
    await waitFor('refinement of the current search', () => s.refined.find((p) => p.searchId === b.searchId), 60000);
  });

  it('finds related code for the symbol at a position (semcode/related)', async () => {
    const uri = vscode.Uri.file(path.join(ws.root, 'auth/tokens.py')).toString();
    const r = await s.client.sendRequest<SearchResult>(Methods.related, {
      textDocument: { uri },
      position: { line: 10, character: 10 },
      limit: 5,
    });
    expect(r.rerankPending).toBe(false);
    expect(r.items.length).toBeGreaterThan(0);
    expect(r.items.find((i) => i.name === 'refresh_expired_tokens')).toBeUndefined();
  });
});
