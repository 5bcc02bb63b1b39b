import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { installServer, pipInstallArgs, probeCommand } from '../../src/serverLauncher';

/**
 * A fake `python`: `-m venv DIR` makes DIR/bin/python (itself), `-m pip install X`
 * records X, `-c "import semcode"` succeeds once something was installed.
 */
const FAKE_PYTHON = `#!/bin/sh
here="$(cd "$(dirname "$0")" && pwd)"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && chmod +x "$3/bin/python"; echo "created $3"; exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  [ "$FAKE_PIP_FAIL" = "1" ] && { echo "ERROR: No matching distribution found for $5" >&2; exit 1; }
  shift 4; echo "$*" > "$here/installed"; echo "Successfully installed $*"; exit 0
fi
if [ "$1" = "-c" ]; then
  [ -f "$here/installed" ] && exit 0
  echo "ModuleNotFoundError: No module named 'semcode'" >&2; exit 1
fi
exit 3
`;

const dirs: string[] = [];
function fakePython(): { python: string; base: string } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'semcode-install-'));
  dirs.push(base);
  const python = path.join(base, 'python3');
  fs.writeFileSync(python, FAKE_PYTHON, { mode: 0o755 });
  return { python, base };
}

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  delete process.env.FAKE_PIP_FAIL;
});

describe.skipIf(process.platform === 'win32')('installServer', () => {
  it('creates the venv, pip-installs the source, verifies the import, logs everything', async () => {
    const { python, base } = fakePython();
    const log: string[] = [];
    const reports: string[] = [];
    const venvDir = path.join(base, 'storage', 'venv');
    const result = await installServer({
      basePython: python,
      venvDir,
      source: '/src/semcode',
      platform: process.platform,
      log: (l) => log.push(l),
      report: (m) => reports.push(m),
      onCancel: () => undefined,
    });
    expect(result).toBe(path.join(venvDir, 'bin', 'python'));
    expect(reports).toEqual(['creating a virtual environment…', 'pip install /src/semcode…', 'checking the installation…']);
    expect(log.join('\n')).toContain('Successfully installed /src/semcode');
    expect((await probeCommand(result, ['-c', 'import semcode'])).ok).toBe(true);
  });

  it('fails with a message that points to the log when pip fails', async () => {
    const { python, base } = fakePython();
    process.env.FAKE_PIP_FAIL = '1';
    const log: string[] = [];
    await expect(
      installServer({
        basePython: python,
        venvDir: path.join(base, 'venv'),
        source: 'semcode',
        platform: process.platform,
        log: (l) => log.push(l),
        report: () => undefined,
        onCancel: () => undefined,
      }),
    ).rejects.toThrow(/exited with 1/);
    expect(log.join('\n')).toContain('No matching distribution found');
  });

  it('installs a built wheel with its folder as --find-links (for wheels beside it)', async () => {
    const { python, base } = fakePython();
    const wheels = path.join(base, 'wheels');
    fs.mkdirSync(wheels);
    const wheel = path.join(wheels, 'semcode-0.1.0-py3-none-any.whl');
    fs.writeFileSync(wheel, '');
    const reports: string[] = [];
    const result = await installServer({
      basePython: python,
      venvDir: path.join(base, 'venv'),
      source: wheel,
      platform: process.platform,
      log: () => undefined,
      report: (m) => reports.push(m),
      onCancel: () => undefined,
    });
    expect(reports).toContain(`pip install ${wheel}…`);
    expect(fs.readFileSync(path.join(path.dirname(result), 'installed'), 'utf8').trim()).toBe(`--find-links ${wheels} ${wheel}`);
  });

  it('reports a missing interpreter plainly', async () => {
    expect(await probeCommand('/nonexistent/python3', ['-c', 'import semcode'])).toEqual({ ok: false, error: 'not found' });
    const { python } = fakePython();
    const probe = await probeCommand(python, ['-c', 'import semcode']);
    expect(probe.ok).toBe(false);
    expect(probe.error).toContain("No module named 'semcode'");
  });
});

describe('pipInstallArgs', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'semcode-pipargs-'));
  const wheels = path.join(base, 'wheels');
  const checkout = path.join(base, 'checkout');
  fs.mkdirSync(wheels);
  fs.mkdirSync(checkout);
  fs.writeFileSync(path.join(checkout, 'pyproject.toml'), '');
  afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

  it('passes a package spec or a URL through', async () => {
    expect(await pipInstallArgs('semcode')).toEqual(['semcode']);
    expect(await pipInstallArgs(' semcode==0.1.0 ')).toEqual(['semcode==0.1.0']);
    const url = 'https://example.org/semcode-0.1.0-py3-none-any.whl';
    expect(await pipInstallArgs(url)).toEqual([url]);
  });

  it('installs a wheel with the wheels beside it', async () => {
    const wheel = path.join(wheels, 'semcode-0.1.0-py3-none-any.whl');
    expect(await pipInstallArgs(wheel)).toEqual(['--find-links', wheels, wheel]);
  });

  it('treats a folder of wheels as a local package index', async () => {
    expect(await pipInstallArgs(wheels)).toEqual(['--find-links', wheels, 'semcode']);
  });

  it('installs a checkout from its folder', async () => {
    expect(await pipInstallArgs(checkout)).toEqual([checkout]);
  });

  it('expands ~/', async () => {
    const args = await pipInstallArgs('~/dist/semcode-0.1.0-py3-none-any.whl');
    expect(args[2]).toBe(path.join(os.homedir(), 'dist', 'semcode-0.1.0-py3-none-any.whl'));
  });
});
