/**
 * Finding (and, when asked, installing) the `semcode serve` process.
 *
 * Order, first match wins:
 *   1. `semcode.server.path` (+ `semcode.server.args`): taken as is, the user said so.
 *   2. `semcode.server.pythonPath`: `<python> -m semcode serve`, taken as is.
 *   3. The Python extension's active environment, if `import semcode` works there.
 *   4. The extension's own virtual environment (made by "Install Server"), likewise.
 *   5. `python3` (`python` on Windows) on PATH, likewise.
 *   6. A `semcode` executable on PATH (pipx and similar).
 * Explicit settings are not probed: if they are wrong the start fails loudly, naming the
 * setting. Automatic candidates are probed so that a Python without semcode does not
 * win over one with it; if none has it, the caller offers to install.
 *
 * No `--stdio` is passed: the server speaks stdio by default; LanguageClient only adds
 * the flag for `TransportKind.stdio`, which we do not use (a fallback `python -m
 * semcode.lsp` may not accept it).
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type ServerSource =
  | 'setting:path'
  | 'setting:pythonPath'
  | 'python-extension'
  | 'managed-venv'
  | 'system-python'
  | 'path-executable';

export interface ServerCommand {
  command: string;
  args: string[];
  source: ServerSource;
  /** The interpreter, when the server runs as `python -m semcode`. */
  python?: string;
}

export interface ProbeResult {
  ok: boolean;
  /** Why not, for the user (e.g. "No module named 'semcode'", "ENOENT"). */
  error?: string;
}

export interface Attempt {
  source: ServerSource;
  command: string;
  error: string;
}

export type Discovery = { kind: 'found'; server: ServerCommand; tried: Attempt[] } | { kind: 'missing'; tried: Attempt[] };

export interface LaunchInput {
  path: string;
  args: string[];
  pythonPath: string;
}

export interface DiscoveryDeps {
  platform: NodeJS.Platform;
  /** The Python extension's interpreter for the workspace, if that extension is there. */
  pythonExtensionInterpreter(): Promise<string | undefined>;
  /** Interpreter of the extension's own virtual environment (may not exist). */
  managedVenvPython: string;
  fileExists(file: string): Promise<boolean>;
  /** Runs a command briefly; ok when it exits 0. */
  probe(command: string, args: string[]): Promise<ProbeResult>;
}

export const SERVE_ARGS = ['-m', 'semcode', 'serve'];
const IMPORT_PROBE = ['-c', 'import semcode'];

export function systemPython(platform: NodeJS.Platform): string {
  return platform === 'win32' ? 'python' : 'python3';
}

export function venvPython(venvDir: string, platform: NodeJS.Platform): string {
  return platform === 'win32' ? path.join(venvDir, 'Scripts', 'python.exe') : path.join(venvDir, 'bin', 'python');
}

export async function discoverServer(launch: LaunchInput, deps: DiscoveryDeps): Promise<Discovery> {
  if (launch.path) {
    return { kind: 'found', server: { command: launch.path, args: launch.args, source: 'setting:path' }, tried: [] };
  }
  if (launch.pythonPath) {
    return { kind: 'found', server: pythonServer(launch.pythonPath, 'setting:pythonPath'), tried: [] };
  }

  const tried: Attempt[] = [];
  const candidates: Array<{ source: ServerSource; python: () => Promise<string | undefined> }> = [
    { source: 'python-extension', python: () => deps.pythonExtensionInterpreter().catch(() => undefined) },
    {
      source: 'managed-venv',
      python: async () => ((await deps.fileExists(deps.managedVenvPython)) ? deps.managedVenvPython : undefined),
    },
    { source: 'system-python', python: async () => systemPython(deps.platform) },
  ];
  const seen = new Set<string>();
  for (const candidate of candidates) {
    const python = await candidate.python();
    if (!python || seen.has(python)) continue;
    seen.add(python);
    const probe = await deps.probe(python, IMPORT_PROBE);
    if (probe.ok) return { kind: 'found', server: pythonServer(python, candidate.source), tried };
    tried.push({ source: candidate.source, command: python, error: probe.error ?? 'failed' });
  }

  const exe = deps.platform === 'win32' ? 'semcode.exe' : 'semcode';
  const probe = await deps.probe(exe, ['--help']);
  if (probe.ok) return { kind: 'found', server: { command: exe, args: ['serve'], source: 'path-executable' }, tried };
  tried.push({ source: 'path-executable', command: exe, error: probe.error ?? 'failed' });
  return { kind: 'missing', tried };
}

function pythonServer(python: string, source: ServerSource): ServerCommand {
  return { command: python, args: [...SERVE_ARGS], source, python };
}

export function describeAttempts(tried: readonly Attempt[]): string {
  return tried.map((t) => `${t.command} (${t.source}): ${t.error}`).join('; ');
}

/** Runs `command args` for at most `timeoutMs`; never throws. */
export function probeCommand(command: string, args: string[], timeoutMs = 15000): Promise<ProbeResult> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, windowsHide: true }, (err, _stdout, stderr) => {
      if (!err) return resolve({ ok: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return resolve({ ok: false, error: 'not found' });
      const lastLine = String(stderr).trim().split('\n').pop();
      resolve({ ok: false, error: lastLine || err.message });
    });
  });
}

export async function fileExists(file: string): Promise<boolean> {
  try {
    await fs.promises.access(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The part of the ms-python.python extension API we use (both API generations). */
export interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath?(resource?: unknown): { path: string } | undefined;
    resolveEnvironment?(env: { path: string } | string): Promise<{ executable?: { uri?: { fsPath: string } } } | undefined>;
  };
  settings?: {
    getExecutionDetails?(resource?: unknown): { execCommand: string[] | undefined };
  };
}

/** Interpreter path from the Python extension's API; undefined if it does not say. */
export async function interpreterFromPythonApi(api: PythonExtensionApi | undefined, resource?: unknown): Promise<string | undefined> {
  if (!api) return undefined;
  const envs = api.environments;
  const active = envs?.getActiveEnvironmentPath?.(resource);
  if (active?.path) {
    const resolved = await envs?.resolveEnvironment?.(active).catch(() => undefined);
    return resolved?.executable?.uri?.fsPath || active.path;
  }
  const exec = api.settings?.getExecutionDetails?.(resource).execCommand;
  // A multi-word execCommand (e.g. `conda run …`) is not a plain interpreter: skip it.
  return exec && exec.length === 1 ? exec[0] : undefined;
}

/**
 * The `pip install` arguments for `semcode.server.installSource`:
 *   - a built wheel (`…/semcode-0.2.0-py3-none-any.whl`): that wheel, with its folder as
 *     `--find-links`, so wheels beside it (llama-cpp-python, built once) are used too;
 *   - a folder of wheels (a local package index): `--find-links FOLDER semcode`;
 *   - a checkout (a folder with pyproject.toml or setup.py), a package spec
 *     (`semcode`, `semcode==0.2.0`) or a URL: as is.
 * A leading `~/` is the home folder.
 */
export async function pipInstallArgs(source: string, isDirectory: (p: string) => Promise<boolean> = directoryExists): Promise<string[]> {
  let src = source.trim();
  if (src === '~' || src.startsWith('~/')) src = path.join(os.homedir(), src.slice(1));
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(src);
  if (!isUrl && src.toLowerCase().endsWith('.whl')) {
    const wheel = path.resolve(src);
    return ['--find-links', path.dirname(wheel), wheel];
  }
  if (!isUrl && (await isDirectory(src))) {
    const dir = path.resolve(src);
    for (const marker of ['pyproject.toml', 'setup.py']) {
      if (await fileReadable(path.join(dir, marker))) return [dir];
    }
    return ['--find-links', dir, 'semcode'];
  }
  return [src];
}

async function directoryExists(p: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function fileReadable(p: string): Promise<boolean> {
  try {
    await fs.promises.access(p, fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

export interface InstallOptions {
  /** Interpreter that creates the venv. */
  basePython: string;
  venvDir: string;
  /** `semcode.server.installSource`: a spec, a wheel, a folder of wheels or a checkout (see `pipInstallArgs`). */
  source: string;
  platform: NodeJS.Platform;
  log(line: string): void;
  report(message: string): void;
  /** Resolves when the user cancels. */
  onCancel(listener: () => void): void;
}

/**
 * Makes `venvDir` (if missing) and pip-installs semcode into it; returns its python.
 * Output goes to `log` so a failure can be read in the output channel.
 */
export async function installServer(opts: InstallOptions): Promise<string> {
  const python = venvPython(opts.venvDir, opts.platform);
  if (!(await fileExists(python))) {
    opts.report('creating a virtual environment…');
    await fs.promises.mkdir(path.dirname(opts.venvDir), { recursive: true });
    await runLogged(opts.basePython, ['-m', 'venv', opts.venvDir], opts);
  }
  const pipArgs = await pipInstallArgs(opts.source);
  opts.report(`pip install ${pipArgs[pipArgs.length - 1]}…`);
  await runLogged(python, ['-m', 'pip', 'install', '--upgrade', ...pipArgs], opts);
  opts.report('checking the installation…');
  const probe = await probeCommand(python, IMPORT_PROBE);
  if (!probe.ok) throw new Error(`semcode was installed but cannot be imported: ${probe.error}`);
  return python;
}

function runLogged(command: string, args: string[], opts: InstallOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    opts.log(`$ ${command} ${args.join(' ')}`);
    const child = spawn(command, args, { windowsHide: true, env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' } });
    let cancelled = false;
    opts.onCancel(() => {
      cancelled = true;
      child.kill();
    });
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString().split(/\r?\n/)) if (line.trim()) opts.log(line);
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    child.on('error', (err) => reject(new Error(`${command}: ${err.message}`)));
    child.on('close', (code) => {
      if (cancelled) reject(new Error('cancelled'));
      else if (code === 0) resolve();
      else reject(new Error(`${path.basename(command)} ${args.slice(0, 3).join(' ')} exited with ${code} (see the semcode output)`));
    });
  });
}
