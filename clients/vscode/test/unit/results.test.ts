import { beforeEach, describe, expect, it } from 'vitest';
import * as vscode from 'vscode';
import { EditorNavigator } from '../../src/navigator';
import { contentTag, displayPath, symbolIcon, toLocation, toQuickPickItem, toQuickPickItems } from '../../src/results';
import { testing } from '../stub/vscode';
import { item } from './fixtures';

const retry = item('retry', {
  uri: 'file:///home/me/proj/src/http.py',
  path: 'src/http.py',
  workspaceFolder: 'file:///home/me/proj',
  range: { start: { line: 41, character: 0 }, end: { line: 67, character: 0 } },
  selectionRange: { start: { line: 42, character: 8 }, end: { line: 42, character: 13 } },
  kind: 6,
  containerName: 'HttpClient',
  preview: '    def retry(self, request, attempts=3):',
});

describe('result rows', () => {
  it('puts name, container, path:line in the description and the preview in the detail', () => {
    const row = toQuickPickItem(retry, false);
    expect(row.label).toBe('$(symbol-method)');
    expect(row.description).toBe('retry  HttpClient  ·  src/http.py:43');
    expect(row.detail).toBe('def retry(self, request, attempts=3):');
    expect(row.alwaysShow).toBe(true);
    expect(row.buttons?.[0]?.tooltip).toBe('Open to the Side');
    expect(row.result).toBe(retry);
  });

  it('tags anything that is not implementation code with its content kind', () => {
    expect(toQuickPickItem({ ...retry, content: 'code' }, false).description).toBe(
      'retry  HttpClient  ·  src/http.py:43',
    );
    expect(toQuickPickItem({ ...retry, content: 'test' }, false).description).toBe(
      'retry  HttpClient  ·  src/http.py:43  [test]',
    );
    expect(contentTag({ ...retry, content: 'docs' })).toBe('[docs]');
    expect(contentTag(retry)).toBe(''); // older servers send no content
  });

  it('maps LSP SymbolKinds to codicons', () => {
    expect(symbolIcon(5)).toBe('symbol-class');
    expect(symbolIcon(12)).toBe('symbol-function');
    expect(symbolIcon(26)).toBe('symbol-type-parameter');
    expect(symbolIcon(0)).toBe('symbol-misc');
    expect(symbolIcon(99)).toBe('symbol-misc');
  });

  it('names the folder only when results span several workspace folders', () => {
    const other = item('x', { workspaceFolder: 'file:///home/me/lib', path: 'x.py' });
    const rows = toQuickPickItems([retry, other]);
    expect(rows[0]!.description).toContain('proj/src/http.py:43');
    expect(rows[1]!.description).toContain('lib/x.py:');
    expect(displayPath(retry, false)).toBe('src/http.py:43');
  });

  it('maps a result to its location: cursor on the name, the symbol start revealed', () => {
    const loc = toLocation(retry);
    expect(loc.uri.toString()).toBe('file:///home/me/proj/src/http.py');
    expect(loc.selection).toEqual(new vscode.Range(42, 8, 42, 13));
    expect(loc.reveal).toEqual(new vscode.Range(41, 0, 42, 13));
  });
});

describe('EditorNavigator', () => {
  beforeEach(() => testing.reset());

  it('previews without focus, opens pinned (optionally beside), restores after a preview', async () => {
    const origin = await vscode.window.showTextDocument(vscode.Uri.parse('file:///home/me/proj/main.py'), {
      selection: new vscode.Range(3, 1, 3, 1),
    });
    testing.shown.length = 0;
    const nav = new EditorNavigator();

    await nav.preview(retry);
    expect(testing.shown[0]!.options).toMatchObject({ preview: true, preserveFocus: true });
    expect(testing.shown[0]!.options.selection).toEqual(new vscode.Range(42, 8, 42, 13));

    await nav.open(retry, false);
    expect(testing.shown[1]!.options).toMatchObject({ preview: false, preserveFocus: false, viewColumn: undefined });
    expect(String(testing.shown[1]!.target)).toBe('file:///home/me/proj/src/http.py');

    await nav.open(retry, true);
    expect(testing.shown[2]!.options.viewColumn).toBe(vscode.ViewColumn.Beside);

    await nav.restore();
    expect(testing.shown[3]!.target).toBe(origin.document);
    expect(testing.shown[3]!.options.selection.start).toEqual(new vscode.Position(3, 1));
  });

  it('does not move the editor on restore when nothing was previewed', async () => {
    const nav = new EditorNavigator();
    await nav.restore();
    expect(testing.shown).toEqual([]);
  });
});
