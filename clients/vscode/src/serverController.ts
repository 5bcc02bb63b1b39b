/**
 * Owns the server process: discover → start → (restart | stop), the install offer when
 * semcode is missing, and the status bar's client state. Never fails silently: every
 * way the server can fail to start ends in a notification with a way forward.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { State, type LanguageClient } from 'vscode-languageclient/node';
import { createLanguageClient, fetchStatus, pushSettings, type LspSearchBackend } from './languageClient';
import {
  describeAttempts,
  discoverServer,
  fileExists,
  installServer,
  interpreterFromPythonApi,
  probeCommand,
  systemPython,
  venvPython,
  type PythonExtensionApi,
  type ServerCommand,
} from './serverLauncher';
import { launchSettings } from './settings';
import type { StatusBar } from './statusBar';

const SETUP_SECTION = 'README.md';
const INSTALL = 'Install semcode';
const SETUP = 'Open Setup Guide';
const SETTINGS = 'Open Settings';
const LOG = 'Show Log';
const RESTART = 'Restart Server';
/** After a failed start, searches fail fast for this long instead of retrying. */
const RETRY_AFTER_MS = 15000;

export class ServerController implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private installing = false;
  private lastFailure = 0;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly output: vscode.OutputChannel,
    private readonly statusBar: StatusBar,
    private readonly backend: LspSearchBackend,
  ) {}

  get managedVenvDir(): string {
    return path.join(this.context.globalStorageUri.fsPath, 'venv');
  }

  /**
   * The running client; starts it if needed. Rejects with a user-facing message. After a
   * failed start it does not retry for a while, so a user typing in the search box does
   * not get a new start attempt (and notification) per keystroke.
   */
  async ready(): Promise<LanguageClient> {
    if (this.client?.state === State.Running) return this.client;
    if (this.client?.state === State.Starting) {
      // An automatic restart after a crash is under way: wait for it, do not start twice.
      await this.client.start();
      return this.client;
    }
    if (!this.starting && Date.now() - this.lastFailure < RETRY_AFTER_MS) {
      throw new Error('the semcode server is not running: run "semcode: Restart Server" or "semcode: Install Server"');
    }
    const client = await (this.starting ?? this.start());
    if (!client) throw new Error('the semcode server is not running (see the status bar)');
    return client;
  }

  start(): Promise<LanguageClient | undefined> {
    this.starting ??= this.doStart()
      .then((client) => {
        this.lastFailure = client ? 0 : Date.now();
        return client;
      })
      .finally(() => {
        this.starting = undefined;
      });
    return this.starting;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    try {
      if (client.isRunning()) await client.stop(5000);
    } catch (err) {
      this.output.appendLine(`[client] stop: ${errorMessage(err)}`);
    }
    await client.dispose().catch(() => undefined);
  }

  async pushSettings(): Promise<void> {
    if (this.client?.isRunning()) await pushSettings(this.client, this.config());
  }

  private config(): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration('semcode');
  }

  private async doStart(): Promise<LanguageClient | undefined> {
    // A client that gave up after repeated crashes is still around: release it first.
    await this.stop();
    this.statusBar.setState({ kind: 'starting' });
    const launch = launchSettings(this.config());
    const discovery = await discoverServer(launch, {
      platform: process.platform,
      pythonExtensionInterpreter: () => this.pythonExtensionInterpreter(),
      managedVenvPython: venvPython(this.managedVenvDir, process.platform),
      fileExists,
      probe: (command, args) => probeCommand(command, args),
    });
    for (const t of discovery.tried) this.output.appendLine(`[client] no server at ${t.command} (${t.source}): ${t.error}`);
    if (discovery.kind === 'missing') {
      this.statusBar.setState({ kind: 'stopped', reason: 'semcode is not installed' });
      void this.offerInstall(`no Python environment with semcode was found (tried ${describeAttempts(discovery.tried)}).`);
      return undefined;
    }
    if (!(await this.preflight(discovery.server))) return undefined;
    return this.launch(discovery.server);
  }

  /**
   * Checks explicit settings before spawning: a wrong path or a Python without semcode
   * gets one precise message (naming the setting) instead of the client's generic
   * "couldn't create connection to server".
   */
  private async preflight(server: ServerCommand): Promise<boolean> {
    if (server.source === 'setting:path' && path.isAbsolute(server.command) && !(await fileExists(server.command))) {
      this.statusBar.setState({ kind: 'stopped', reason: 'semcode.server.path does not exist' });
      void vscode.window
        .showErrorMessage(
          `semcode: semcode.server.path points to ${server.command}, which does not exist or is not executable.`,
          SETTINGS,
          INSTALL,
        )
        .then((choice) => this.handleChoice(choice));
      return false;
    }
    if (server.source === 'setting:pythonPath' && server.python) {
      const probe = await probeCommand(server.python, ['-c', 'import semcode']);
      if (!probe.ok) {
        this.statusBar.setState({ kind: 'stopped', reason: 'semcode is not installed' });
        void this.offerInstall(`${server.python} (semcode.server.pythonPath) cannot import semcode: ${probe.error}.`);
        return false;
      }
    }
    return true;
  }

  private async launch(server: ServerCommand): Promise<LanguageClient | undefined> {
    this.output.appendLine(`[client] starting ${server.command} ${server.args.join(' ')} (${server.source})`);
    let initError: unknown;
    const client = createLanguageClient(server, {
      config: () => this.config(),
      outputChannel: this.output,
      onStatus: (status) => this.statusBar.update(status),
      onRefined: (params) => this.backend.fireRefined(params),
      onInitializeFailed: (error) => {
        initError = error;
      },
    });
    client.onDidChangeState((e) => {
      if (this.client !== client) return;
      if (e.newState === State.Stopped) {
        this.statusBar.setState({ kind: 'stopped', reason: 'the server stopped (see the semcode output)' });
      } else if (e.newState === State.Running && e.oldState === State.Starting && this.statusBar.current.kind === 'stopped') {
        // Back after an automatic restart: status notifications resume from here.
        this.statusBar.setState({ kind: 'running', status: undefined });
      }
    });
    this.client = client;
    try {
      await client.start();
    } catch (err) {
      if (this.client === client) this.client = undefined;
      await client.dispose().catch(() => undefined);
      // Not awaited: start() must not wait on the user reading a notification.
      void this.reportStartFailure(server, initError ?? err);
      return undefined;
    }
    this.statusBar.setState({ kind: 'running', status: undefined });
    fetchStatus(client).then(
      (status) => this.statusBar.update(status),
      (err: unknown) => this.output.appendLine(`[client] semcode.status: ${errorMessage(err)}`),
    );
    return client;
  }

  private async reportStartFailure(server: ServerCommand, err: unknown): Promise<void> {
    const message = errorMessage(err);
    this.output.appendLine(`[client] start failed: ${message}`);
    this.statusBar.setState({ kind: 'stopped', reason: message });
    // A Python that cannot import semcode: the package is missing, offer to install it.
    if (server.python) {
      const probe = await probeCommand(server.python, ['-c', 'import semcode']);
      if (!probe.ok) {
        await this.offerInstall(`${server.python} cannot import semcode (${probe.error}).`);
        return;
      }
    }
    const choice = await vscode.window.showErrorMessage(`semcode: the server failed to start: ${message}`, LOG, RESTART, SETTINGS);
    await this.handleChoice(choice);
  }

  async offerInstall(reason: string): Promise<void> {
    const choice = await vscode.window.showWarningMessage(
      `semcode: the semcode server is not installed — ${reason} Install it into a private environment of this extension?`,
      INSTALL,
      SETUP,
      SETTINGS,
    );
    await this.handleChoice(choice);
  }

  private async handleChoice(choice: string | undefined): Promise<void> {
    switch (choice) {
      case INSTALL:
        await this.install();
        break;
      case SETUP:
        await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.joinPath(this.context.extensionUri, SETUP_SECTION));
        break;
      case SETTINGS:
        await vscode.commands.executeCommand('workbench.action.openSettings', 'semcode.server');
        break;
      case LOG:
        this.output.show(true);
        break;
      case RESTART:
        await this.restart();
        break;
    }
  }

  /** "Install Server": venv in global storage + pip install, with cancellable progress. */
  async install(): Promise<void> {
    if (this.installing) return;
    this.installing = true;
    const launch = launchSettings(this.config());
    try {
      const basePython = launch.pythonPath || (await this.pythonExtensionInterpreter()) || systemPython(process.platform);
      this.output.show(true);
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'semcode: installing the server', cancellable: true },
        (progress, token) =>
          installServer({
            basePython,
            venvDir: this.managedVenvDir,
            source: launch.installSource,
            platform: process.platform,
            log: (line) => this.output.appendLine(`[install] ${line}`),
            report: (message) => progress.report({ message }),
            onCancel: (listener) => token.onCancellationRequested(listener),
          }),
      );
      void vscode.window.showInformationMessage(`semcode: the server is installed in ${this.managedVenvDir}.`);
      if (launch.path || launch.pythonPath) {
        void vscode.window.showWarningMessage(
          'semcode: semcode.server.path / semcode.server.pythonPath is set and takes precedence over the installed server; clear it to use the installed one.',
        );
      }
      await this.restart();
    } catch (err) {
      const choice = await vscode.window.showErrorMessage(
        `semcode: installing the server failed: ${errorMessage(err)}`,
        LOG,
        SETUP,
        SETTINGS,
      );
      await this.handleChoice(choice);
    } finally {
      this.installing = false;
    }
  }

  private async pythonExtensionInterpreter(): Promise<string | undefined> {
    const ext = vscode.extensions.getExtension<PythonExtensionApi>('ms-python.python');
    if (!ext) return undefined;
    const resource = vscode.workspace.workspaceFolders?.[0]?.uri;
    // Activation of the Python extension can take long (environment discovery): bound it.
    const api = await withTimeout(ext.isActive ? Promise.resolve(ext.exports) : Promise.resolve(ext.activate()), 10000);
    return interpreterFromPythonApi(api, resource);
  }

  dispose(): void {
    void this.stop();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([promise.catch(() => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), ms))]);
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && 'message' in err) return String((err as { message: unknown }).message);
  return String(err);
}
