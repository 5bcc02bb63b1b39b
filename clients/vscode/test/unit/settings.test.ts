import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  affectsLaunch,
  affectsServer,
  didChangeConfigurationParams,
  launchSettings,
  searchSettings,
  SERVER_SETTING_KEYS,
  serverSettings,
  type ConfigReader,
} from '../../src/settings';

const root = path.resolve(__dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const contributed: Record<string, { default: unknown }> = pkg.contributes.configuration.properties;
const protocolDoc = path.resolve(root, '../../docs/protocol.md');

/** Rows of docs/protocol.md "Settings": key → documented default (as written). */
function documentedSettings(): Map<string, string> {
  const text = fs.readFileSync(protocolDoc, 'utf8');
  const section = text.split(/^## Settings$/m)[1]!.split(/^## /m)[0]!;
  const out = new Map<string, string>();
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4 || !cells[1]!.startsWith('`')) continue;
    const keys = [...cells[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const defaults = /\((.*)\)\s*$/.exec(cells[2]!)?.[1] ?? '';
    const parts = keys.length > 1 ? defaults.split(/,\s*/) : [defaults];
    keys.forEach((k, i) => out.set(k, parts[i] ?? parts[0]!));
  }
  return out;
}

/** `hf:…`, `auto`, `0 = auto`, `"" = the user cache dir`, `[]` → comparable string. */
function normalizeDefault(doc: string): string {
  return doc.split(' = ')[0]!.replace(/`/g, '').replace(/^""$/, '').trim();
}

function reader(values: Record<string, unknown>): ConfigReader {
  return { get: <T>(key: string) => values[key] as T | undefined };
}

describe('settings', () => {
  it('covers exactly the settings of docs/protocol.md', () => {
    expect([...documentedSettings().keys()].sort()).toEqual([...SERVER_SETTING_KEYS].sort());
  });

  it('contributes every server setting as semcode.* with the documented default', () => {
    for (const [key, doc] of documentedSettings()) {
      const prop = contributed[`semcode.${key}`];
      expect(prop, `semcode.${key} is contributed`).toBeDefined();
      const expected = normalizeDefault(doc);
      const actual = Array.isArray(prop!.default) ? JSON.stringify(prop!.default) : String(prop!.default);
      expect(actual === expected || Number(actual) === Number(expected), `default of ${key}: ${actual} vs ${expected}`).toBe(true);
    }
  });

  it('sends the server keys only: set ones with their value, unset ones as null (= server default)', () => {
    const values: Record<string, unknown> = {
      embeddingModel: 'off',
      rerankerModel: 'off',
      indexDir: '/tmp/idx',
      exclude: ['dist/**'],
      'server.path': '/usr/bin/semcode',
      'search.limit': 10,
    };
    const sent = serverSettings(reader(values));
    expect(Object.keys(sent).sort()).toEqual([...SERVER_SETTING_KEYS].sort());
    expect(sent).toMatchObject({ embeddingModel: 'off', rerankerModel: 'off', indexDir: '/tmp/idx', exclude: ['dist/**'], rrfK: null });
    expect(didChangeConfigurationParams(reader(values)).settings.semcode).toEqual(sent);
  });

  it('treats contributed defaults as unset (so .semcode.toml and the config file still apply)', () => {
    // What VS Code does: get() returns the contributed default, inspect() shows no user value.
    const config: ConfigReader = {
      get: <T>(key: string) => (key === 'rrfK' ? 60 : key === 'rerank' ? false : undefined) as T,
      inspect: (key: string) => (key === 'rerank' ? { workspaceValue: false } : { globalValue: undefined }),
    };
    const sent = serverSettings(config);
    expect(sent.rrfK).toBeNull();
    expect(sent.rerank).toBe(false);
  });

  it('reads launch and search settings with safe fallbacks', () => {
    expect(launchSettings(reader({}))).toEqual({ path: '', args: ['serve'], pythonPath: '', installSource: 'semcode' });
    expect(launchSettings(reader({ 'server.path': ' /x/semcode ', 'server.args': ['serve', '--log-level', 'debug'] }))).toMatchObject({
      path: '/x/semcode',
      args: ['serve', '--log-level', 'debug'],
    });
    expect(searchSettings(reader({}))).toEqual({ limit: 30, debounceMs: 200, mode: 'hybrid' });
    expect(searchSettings(reader({ 'search.limit': 999, 'search.debounceMs': -5, 'search.mode': 'lexical' }))).toEqual({
      limit: 200,
      debounceMs: 0,
      mode: 'lexical',
    });
  });

  it('tells launch changes (restart) from server changes (push)', () => {
    expect(affectsLaunch((s) => s === 'semcode.server')).toBe(true);
    expect(affectsServer((s) => s === 'semcode.rerank')).toBe(true);
    expect(affectsServer((s) => s === 'semcode.search.limit')).toBe(false);
  });

  it('has a command for every contributed menu and keybinding entry', () => {
    const ids = new Set(pkg.contributes.commands.map((c: { command: string }) => c.command));
    for (const kb of pkg.contributes.keybindings) expect(ids.has(kb.command)).toBe(true);
    for (const entries of Object.values(pkg.contributes.menus) as { command: string }[][]) {
      for (const m of entries) expect(ids.has(m.command)).toBe(true);
    }
    // Server command ids are registered by vscode-languageclient itself: no collisions.
    for (const serverCommand of ['semcode.search', 'semcode.reindex', 'semcode.status']) expect(ids.has(serverCommand)).toBe(false);
  });
});
