/**
 * The *bundled* extension (out/extension.js, what the .vsix ships) activated against the
 * VS Code stub: commands registered, failures reported with a way forward, and a real
 * server started from `semcode.server.path`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as vscode from 'vscode';
import { testing } from '../stub/vscode';
import { makeWorkspace } from './fixture';
import { serverCommand, serverUnavailable } from './serverCommand';

const root = path.resolve(__dirname, '../..');
const bundle = path.join(root, 'out', 'extension.js');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

interface Extension {
  activate(ctx: unknown): void;
  deactivate(): Promise<void>;
}

function loadExtension(): Extension {
  const req = createRequire(__filename);
  delete req.cache[bundle];
  return req(bundle) as Extension;
}

function context() {
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'semcode-storage-'));
  return {
    subscriptions: [] as { dispose(): unknown }[],
    globalStorageUri: vscode.Uri.file(storage),
    extensionUri: vscode.Uri.file(root),
    storage,
  };
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 60000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let active: { ext: Extension; ctx: ReturnType<typeof context> } | undefined;

async function activate(settings: Record<string, unknown>, folder?: string) {
  testing.reset();
  testing.configuration = Object.fromEntries(Object.entries(settings).map(([k, v]) => [`semcode.${k}`, v]));
  if (folder) testing.workspaceFolders = [{ uri: vscode.Uri.file(folder) as never, name: path.basename(folder), index: 0 }];
  const ext = loadExtension();
  const ctx = context();
  ext.activate(ctx);
  active = { ext, ctx };
  return active;
}

afterEach(async () => {
  if (!active) return;
  await active.ext.deactivate();
  for (const d of active.ctx.subscriptions) d.dispose();
  fs.rmSync(active.ctx.storage, { recursive: true, force: true });
  active = undefined;
});

describe('bundled extension', () => {
  beforeAll(() => {
    if (!fs.existsSync(bundle)) throw new Error('out/extension.js is missing: run `npm run bundle` first');
  });

  it('registers every contributed command', async () => {
    await activate({ 'server.path': '/nonexistent/semcode' });
    for (const c of pkg.contributes.commands as { command: string }[]) {
      expect(testing.commands.has(c.command), c.command).toBe(true);
    }
  });

  it('names the setting when semcode.server.path does not exist', async () => {
    await activate({ 'server.path': '/nonexistent/semcode', 'server.args': ['serve'] });
    const msg = await waitFor('an error message', () => testing.messages.find((m) => m.level === 'error'));
    expect(msg.message).toContain('semcode.server.path');
    expect(testing.statusBarItems[0]!.text).toContain('circle-slash');
  });

  it('offers to install when the configured Python lacks semcode', async () => {
    const python = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => fs.existsSync(p));
    if (!python) return;
    await activate({ 'server.pythonPath': python });
    const msg = await waitFor('the install offer', () => testing.messages.find((m) => m.items.includes('Install semcode')));
    expect(msg.message).toContain('cannot import semcode');
    expect(msg.items).toEqual(['Install semcode', 'Open Setup Guide', 'Open Settings']);
  });

  const server = serverCommand();
  const unavailable = serverUnavailable(server);
  it.skipIf(!!unavailable)('starts the real server, shows status in the status bar and the status report', async () => {
    const ws = makeWorkspace();
    try {
      await activate(
        {
          'server.path': server.command,
          'server.args': server.args,
          embeddingModel: 'off',
          rerankerModel: 'off',
          indexDir: ws.indexDir,
        },
        ws.root,
      );
      const item = testing.statusBarItems[0]!;
      await waitFor('status bar: ready', () => /check|warning/.test(item.text), 90000);
      await vscode.commands.executeCommand('semcode.showStatus');
      const channel = testing.outputChannels.find((c) => c.name === 'semcode: Status')!;
      await waitFor('the status report', () => channel.lines.join('\n').includes('Workspaces'));
      expect(channel.lines.join('\n')).toContain(ws.root);
      expect(testing.messages.filter((m) => m.level === 'error')).toEqual([]);
    } finally {
      ws.cleanup();
    }
  });
});
