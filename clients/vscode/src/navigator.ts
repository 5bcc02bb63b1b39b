/**
 * Moving the editor to results: a preview while the user browses the list, the real
 * open on Enter, and going back where the user was when the list is dismissed.
 */
import * as vscode from 'vscode';
import type { SearchItem } from './protocol';
import { toLocation } from './results';

export interface Navigator {
  /** Show the result without taking focus from the QuickPick (preview editor). */
  preview(item: SearchItem): Promise<void>;
  /** Open the result for editing; `side` opens it beside the active editor. */
  open(item: SearchItem, side: boolean): Promise<void>;
  /** Back to the editor and selection that were active before the first preview. */
  restore(): Promise<void>;
}

export class EditorNavigator implements Navigator {
  private readonly original: { editor: vscode.TextEditor; selection: vscode.Selection } | undefined;
  private previewed = false;

  constructor() {
    const editor = vscode.window.activeTextEditor;
    this.original = editor ? { editor, selection: editor.selection } : undefined;
  }

  async preview(item: SearchItem): Promise<void> {
    this.previewed = true;
    await this.show(item, { preview: true, preserveFocus: true });
  }

  async open(item: SearchItem, side: boolean): Promise<void> {
    await this.show(item, {
      preview: false,
      preserveFocus: false,
      viewColumn: side ? vscode.ViewColumn.Beside : undefined,
    });
  }

  async restore(): Promise<void> {
    if (!this.previewed) return;
    if (!this.original) return;
    const { editor, selection } = this.original;
    try {
      const shown = await vscode.window.showTextDocument(editor.document, {
        viewColumn: editor.viewColumn,
        selection,
        preserveFocus: false,
      });
      shown.revealRange(selection, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    } catch {
      // The original document may have been closed meanwhile; nothing to go back to.
    }
  }

  private async show(item: SearchItem, options: vscode.TextDocumentShowOptions): Promise<void> {
    const loc = toLocation(item);
    try {
      const editor = await vscode.window.showTextDocument(loc.uri, { ...options, selection: loc.selection });
      editor.revealRange(loc.reveal, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    } catch (err) {
      // Typically a file deleted since it was indexed: say so instead of failing silently.
      if (!options.preserveFocus) {
        void vscode.window.showWarningMessage(`semcode: cannot open ${item.path}: ${errorMessage(err)}`);
      }
    }
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
