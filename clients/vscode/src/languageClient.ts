/**
 * Building the LanguageClient for a discovered server command, and the search backend
 * on top of it. Shared by the extension and the integration test, so the test drives
 * exactly the options the extension ships with.
 */
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  RevealOutputChannelOn,
  type ServerOptions,
} from 'vscode-languageclient/node';
import {
  Methods,
  ServerCommands,
  type CancelSearchParams,
  type RelatedParams,
  type SearchParams,
  type SearchRefinedParams,
  type SearchResult,
  type Status,
} from './protocol';
import type { SearchBackend } from './searchQuickPick';
import type { ServerCommand } from './serverLauncher';
import { didChangeConfigurationParams, serverSettings, type ConfigReader } from './settings';

export const CLIENT_ID = 'semcode';
export const CLIENT_NAME = 'semcode';

export interface ClientHooks {
  /** Current `semcode` configuration (read again on every use). */
  config(): ConfigReader;
  outputChannel?: vscode.OutputChannel;
  onStatus(status: Status): void;
  onRefined(params: SearchRefinedParams): void;
  /** `initialize` failed (bad settings → InvalidParams naming the setting). */
  onInitializeFailed?(error: unknown): void;
}

export function serverOptions(server: ServerCommand): ServerOptions {
  const executable = {
    command: server.command,
    args: server.args,
    // Unbuffered so a crash's traceback reaches the output channel before exit.
    options: { env: { ...process.env, PYTHONUNBUFFERED: '1' } },
  };
  return { run: executable, debug: executable };
}

export function clientOptions(hooks: ClientHooks): LanguageClientOptions {
  return {
    // Every file: the server decides what it indexes (workspace folders, ignore rules),
    // and unsaved buffers must reach it to be searchable.
    documentSelector: [{ scheme: 'file' }],
    initializationOptions: serverSettings(hooks.config()),
    outputChannel: hooks.outputChannel,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    initializationFailedHandler: (error) => {
      hooks.onInitializeFailed?.(error);
      return false;
    },
    middleware: {
      workspace: {
        // If the server pulls `workspace/configuration` for "semcode", hand it only the
        // server's keys: it rejects unknown ones such as `server.path`.
        configuration: async (params, token, next) => {
          const result = await next(params, token);
          if (!Array.isArray(result)) return result;
          return params.items.map((item, i) => (item.section === 'semcode' ? serverSettings(hooks.config()) : result[i]));
        },
      },
    },
  };
}

export function createLanguageClient(server: ServerCommand, hooks: ClientHooks): LanguageClient {
  const client = new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions(server), clientOptions(hooks));
  // Registered before start(): the client installs them once the connection exists,
  // and again after an automatic restart.
  client.onNotification(Methods.status, (status: Status) => hooks.onStatus(status));
  client.onNotification(Methods.searchRefined, (params: SearchRefinedParams) => hooks.onRefined(params));
  return client;
}

export function pushSettings(client: LanguageClient, config: ConfigReader): Promise<void> {
  return client.sendNotification(DidChangeConfigurationNotification.type, didChangeConfigurationParams(config));
}

export function fetchStatus(client: LanguageClient): Promise<Status> {
  return client.sendRequest(ExecuteCommandRequest.type, { command: ServerCommands.status, arguments: [] }) as Promise<Status>;
}

export function reindex(client: LanguageClient, full: boolean): Promise<unknown> {
  return client.sendRequest(ExecuteCommandRequest.type, {
    command: ServerCommands.reindex,
    arguments: full ? [{ full: true }] : [],
  });
}

/** `SearchBackend` over whichever client is current (the client changes on restart). */
export class LspSearchBackend implements SearchBackend {
  private readonly refined = new vscode.EventEmitter<SearchRefinedParams>();
  readonly onDidRefine = this.refined.event;

  constructor(private readonly client: () => Promise<LanguageClient>) {}

  /** Called by the client's `semcode/searchRefined` handler. */
  fireRefined(params: SearchRefinedParams): void {
    this.refined.fire(params);
  }

  async search(params: SearchParams, token: vscode.CancellationToken): Promise<SearchResult> {
    const client = await this.client();
    return client.sendRequest<SearchResult>(Methods.search, params, token);
  }

  async related(params: RelatedParams, token: vscode.CancellationToken): Promise<SearchResult> {
    const client = await this.client();
    return client.sendRequest<SearchResult>(Methods.related, params, token);
  }

  cancelSearch(searchId: string): void {
    const params: CancelSearchParams = { searchId };
    void this.client()
      .then((client) => client.sendNotification(Methods.cancelSearch, params))
      .catch(() => undefined);
  }

  dispose(): void {
    this.refined.dispose();
  }
}
