/**
 * Entry point: wires the server controller, the status bar, the search QuickPick and
 * the commands. Each piece lives in its own module; this file only connects them.
 */
import * as vscode from 'vscode';
import { fetchStatus, LspSearchBackend, reindex } from './languageClient';
import { EditorNavigator } from './navigator';
import type { RelatedParams } from './protocol';
import { SearchQuickPick } from './searchQuickPick';
import { errorMessage, ServerController } from './serverController';
import { affectsLaunch, affectsServer, searchSettings } from './settings';
import { SHOW_STATUS_COMMAND, StatusBar, statusReport } from './statusBar';

/** Longest query the server accepts (docs/protocol.md, `semcode/search`). */
const MAX_QUERY_CHARS = 10000;

let controller: ServerController | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('semcode');
  const statusOutput = vscode.window.createOutputChannel('semcode: Status');
  const statusBar = new StatusBar();
  const backend: LspSearchBackend = new LspSearchBackend(() => server.ready());
  const server: ServerController = new ServerController(context, output, statusBar, backend);
  controller = server;
  context.subscriptions.push(output, statusOutput, statusBar, backend, server);

  const config = () => vscode.workspace.getConfiguration('semcode');
  const openSearch = (options: ConstructorParameters<typeof SearchQuickPick>[3]) => {
    const picker = new SearchQuickPick(backend, new EditorNavigator(), searchSettings(config()), options);
    picker.show();
  };
  const command = (id: string, run: () => unknown) =>
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async () => {
        try {
          await run();
        } catch (err) {
          void vscode.window.showErrorMessage(`semcode: ${errorMessage(err)}`);
        }
      }),
    );

  command('semcode.searchByMeaning', () => openSearch({}));

  command('semcode.searchSelection', () => {
    const editor = vscode.window.activeTextEditor;
    const text = editor ? editor.document.getText(editor.selection) : '';
    // Whitespace runs (indentation, newlines) carry no meaning for the query.
    const query = text.replace(/\s+/g, ' ').trim().slice(0, MAX_QUERY_CHARS);
    openSearch(query ? { initialQuery: query } : {});
  });

  command('semcode.findRelated', () => {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('semcode: put the cursor on a symbol in an editor first.');
      return;
    }
    const pos = editor.selection.active;
    const word = editor.document.getText(editor.document.getWordRangeAtPosition(pos)) || 'cursor';
    const params: RelatedParams = {
      textDocument: { uri: editor.document.uri.toString() },
      position: { line: pos.line, character: pos.character },
      limit: searchSettings(config()).limit,
    };
    openSearch({
      initialRequest: { title: `semcode: Code Related to ${word}`, run: (token) => backend.related(params, token) },
    });
  });

  command(SHOW_STATUS_COMMAND, async () => {
    statusOutput.clear();
    const state = statusBar.current;
    if (state.kind === 'stopped') {
      statusOutput.appendLine(`The server is not running: ${state.reason}`);
      statusOutput.appendLine('Run "semcode: Restart Server" or "semcode: Install Server"; the log is in the "semcode" output.');
      statusOutput.show(true);
      return;
    }
    const status = await fetchStatus(await server.ready());
    statusBar.update(status);
    statusOutput.appendLine(statusReport(status));
    statusOutput.show(true);
  });

  command('semcode.reindexWorkspace', async () => {
    const pick = await vscode.window.showQuickPick(
      [
        { label: 'Update the index', description: 'only files that changed', full: false },
        { label: 'Rebuild the index', description: 'drop it and start over (embeddings stay cached)', full: true },
      ],
      { title: 'semcode: Reindex Workspace' },
    );
    if (pick) await reindex(await server.ready(), pick.full);
  });

  command('semcode.restartServer', () => server.restart());
  command('semcode.installServer', () => server.install());

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      const affects = (section: string) => e.affectsConfiguration(section);
      if (affectsLaunch(affects)) {
        void vscode.window
          .showInformationMessage('semcode: the server settings changed. Restart the server to apply them?', 'Restart Server')
          .then((choice) => (choice ? server.restart() : undefined));
      } else if (affectsServer(affects)) {
        server.pushSettings().catch((err: unknown) => output.appendLine(`[client] settings: ${errorMessage(err)}`));
      }
    }),
  );

  // Not awaited: activation must stay fast; the status bar shows the progress.
  void server.start();
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}
