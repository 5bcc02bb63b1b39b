import { describe, expect, it } from 'vitest';
import {
  discoverServer,
  interpreterFromPythonApi,
  venvPython,
  type DiscoveryDeps,
  type LaunchInput,
} from '../../src/serverLauncher';

const noSettings: LaunchInput = { path: '', args: ['serve'], pythonPath: '' };

/** Deps where `withSemcode` lists the commands whose probe succeeds. */
function deps(opts: { withSemcode: string[]; pythonExt?: string; venvExists?: boolean; platform?: NodeJS.Platform }) {
  const probes: string[] = [];
  const d: DiscoveryDeps = {
    platform: opts.platform ?? 'linux',
    pythonExtensionInterpreter: async () => opts.pythonExt,
    managedVenvPython: '/storage/venv/bin/python',
    fileExists: async (f) => f === '/storage/venv/bin/python' && !!opts.venvExists,
    probe: async (command) => {
      probes.push(command);
      return opts.withSemcode.includes(command) ? { ok: true } : { ok: false, error: "No module named 'semcode'" };
    },
  };
  return { d, probes };
}

describe('discoverServer', () => {
  it('uses semcode.server.path and its args as is, without probing', async () => {
    const { d, probes } = deps({ withSemcode: [] });
    const r = await discoverServer({ ...noSettings, path: '/opt/semcode', args: ['serve', '--log-level', 'debug'] }, d);
    expect(r).toMatchObject({ kind: 'found', server: { command: '/opt/semcode', args: ['serve', '--log-level', 'debug'], source: 'setting:path' } });
    expect(probes).toEqual([]);
  });

  it('prefers semcode.server.path over semcode.server.pythonPath', async () => {
    const { d } = deps({ withSemcode: [] });
    const r = await discoverServer({ ...noSettings, path: '/opt/semcode', pythonPath: '/py' }, d);
    expect(r.kind === 'found' && r.server.source).toBe('setting:path');
  });

  it('runs semcode.server.pythonPath as `-m semcode serve` (no --stdio)', async () => {
    const { d, probes } = deps({ withSemcode: [] });
    const r = await discoverServer({ ...noSettings, pythonPath: '/home/me/.venv/bin/python' }, d);
    expect(r).toMatchObject({
      kind: 'found',
      server: { command: '/home/me/.venv/bin/python', args: ['-m', 'semcode', 'serve'], source: 'setting:pythonPath' },
    });
    expect(probes).toEqual([]);
  });

  it('then the Python extension environment, when it has semcode', async () => {
    const { d, probes } = deps({ withSemcode: ['/proj/.venv/bin/python', 'python3'], pythonExt: '/proj/.venv/bin/python', venvExists: true });
    const r = await discoverServer(noSettings, d);
    expect(r.kind === 'found' && r.server.source).toBe('python-extension');
    expect(probes).toEqual(['/proj/.venv/bin/python']);
  });

  it('then the managed venv, then python3, skipping interpreters without semcode', async () => {
    const a = deps({ withSemcode: ['/storage/venv/bin/python', 'python3'], pythonExt: '/proj/.venv/bin/python', venvExists: true });
    const ra = await discoverServer(noSettings, a.d);
    expect(ra.kind === 'found' && ra.server).toMatchObject({ command: '/storage/venv/bin/python', source: 'managed-venv' });
    expect(a.probes).toEqual(['/proj/.venv/bin/python', '/storage/venv/bin/python']);

    const b = deps({ withSemcode: ['python3'], pythonExt: undefined, venvExists: false });
    const rb = await discoverServer(noSettings, b.d);
    expect(rb.kind === 'found' && rb.server).toMatchObject({ command: 'python3', args: ['-m', 'semcode', 'serve'], source: 'system-python' });
    expect(rb.kind === 'found' && rb.tried).toEqual([]);
  });

  it('then a semcode executable on PATH', async () => {
    const { d } = deps({ withSemcode: ['semcode'] });
    const r = await discoverServer(noSettings, d);
    expect(r.kind === 'found' && r.server).toMatchObject({ command: 'semcode', args: ['serve'], source: 'path-executable' });
  });

  it('reports every attempt when nothing has semcode (→ install offer)', async () => {
    const { d } = deps({ withSemcode: [], pythonExt: '/proj/.venv/bin/python', venvExists: true });
    const r = await discoverServer(noSettings, d);
    expect(r.kind).toBe('missing');
    expect(r.tried.map((t) => t.source)).toEqual(['python-extension', 'managed-venv', 'system-python', 'path-executable']);
    expect(r.tried[0]!.error).toContain('semcode');
  });

  it('probes an interpreter once even if two sources name it', async () => {
    const { d, probes } = deps({ withSemcode: [], pythonExt: 'python3' });
    await discoverServer(noSettings, d);
    expect(probes.filter((p) => p === 'python3')).toHaveLength(1);
  });

  it('uses python and Scripts\\python.exe on Windows', async () => {
    const { d, probes } = deps({ withSemcode: [], platform: 'win32' });
    await discoverServer(noSettings, d);
    expect(probes).toContain('python');
    expect(probes).toContain('semcode.exe');
    expect(venvPython('C:\\s\\venv', 'win32')).toMatch(/Scripts.python\.exe$/);
    expect(venvPython('/s/venv', 'linux')).toBe('/s/venv/bin/python');
  });
});

describe('interpreterFromPythonApi', () => {
  it('resolves the active environment (environments API)', async () => {
    const api = {
      environments: {
        getActiveEnvironmentPath: () => ({ path: '/proj/.venv' }),
        resolveEnvironment: async () => ({ executable: { uri: { fsPath: '/proj/.venv/bin/python' } } }),
      },
    };
    expect(await interpreterFromPythonApi(api)).toBe('/proj/.venv/bin/python');
  });

  it('falls back to the legacy execution details, but not to a multi-word command', async () => {
    expect(await interpreterFromPythonApi({ settings: { getExecutionDetails: () => ({ execCommand: ['/usr/bin/python3.12'] }) } })).toBe(
      '/usr/bin/python3.12',
    );
    expect(await interpreterFromPythonApi({ settings: { getExecutionDetails: () => ({ execCommand: ['conda', 'run', '-n', 'x', 'python'] }) } })).toBe(
      undefined,
    );
    expect(await interpreterFromPythonApi(undefined)).toBe(undefined);
  });
});
