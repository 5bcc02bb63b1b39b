/**
 * Which server the integration test runs: `SEMCODE_SERVER_CMD` (a shell-like word list),
 * else `<repo>/.venv/bin/semcode serve`, else `<repo>/.venv/bin/python -m semcode.lsp`.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ServerCommand } from '../../src/serverLauncher';

export const repoRoot = path.resolve(__dirname, '../../../..');

export function serverCommand(): ServerCommand {
  const env = process.env.SEMCODE_SERVER_CMD?.trim();
  if (env) {
    const [command, ...args] = splitWords(env);
    return { command: command!, args, source: 'setting:path' };
  }
  const semcode = path.join(repoRoot, '.venv', 'bin', 'semcode');
  const python = path.join(repoRoot, '.venv', 'bin', 'python');
  if (fs.existsSync(semcode) && canRun(semcode, ['serve', '--help'])) {
    return { command: semcode, args: ['serve'], source: 'setting:path' };
  }
  return { command: python, args: ['-m', 'semcode.lsp'], source: 'setting:pythonPath', python };
}

/**
 * Why the server cannot run here, or undefined when it can. Only the *default* server
 * may be missing (the tests are then skipped with a warning); a server named by
 * SEMCODE_SERVER_CMD must work, so a broken one fails the tests instead of hiding.
 */
export function serverUnavailable(server: ServerCommand): string | undefined {
  if (process.env.SEMCODE_SERVER_CMD?.trim()) return undefined;
  if (server.source === 'setting:pythonPath' && !canRun(server.command, ['-c', 'import semcode.lsp.server'])) {
    return `${server.command} cannot import semcode.lsp.server`;
  }
  if (path.isAbsolute(server.command) && !fs.existsSync(server.command)) return `${server.command} does not exist`;
  return undefined;
}

export function venvPython(): string {
  return path.join(repoRoot, '.venv', 'bin', 'python');
}

function canRun(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: 'ignore', timeout: 60000 });
    return true;
  } catch {
    return false;
  }
}

function splitWords(s: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(s); m; m = re.exec(s)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}
