/**
 * Search results → VS Code: QuickPick rows and editor locations.
 *
 * The row's `label` is only a codicon. VS Code re-sorts and highlights QuickPick items
 * whose label matches the typed text, which would scramble the server's ranking (and a
 * natural-language query rarely matches a symbol name anyway, so fuzzy filtering would
 * hide good results). Name, container and path go into `description`/`detail`, and
 * every row is `alwaysShow`.
 */
import * as vscode from 'vscode';
import type { Range as LspRange, SearchItem } from './protocol';

export interface ResultQuickPickItem extends vscode.QuickPickItem {
  readonly result: SearchItem;
}

/** Codicon per LSP SymbolKind (1-based; index 0 unused). */
const SYMBOL_ICONS: readonly string[] = [
  'symbol-misc',
  'symbol-file',
  'symbol-module',
  'symbol-namespace',
  'symbol-package',
  'symbol-class',
  'symbol-method',
  'symbol-property',
  'symbol-field',
  'symbol-constructor',
  'symbol-enum',
  'symbol-interface',
  'symbol-function',
  'symbol-variable',
  'symbol-constant',
  'symbol-string',
  'symbol-number',
  'symbol-boolean',
  'symbol-array',
  'symbol-object',
  'symbol-key',
  'symbol-null',
  'symbol-enum-member',
  'symbol-struct',
  'symbol-event',
  'symbol-operator',
  'symbol-type-parameter',
];

export function symbolIcon(kind: number): string {
  return SYMBOL_ICONS[kind] ?? 'symbol-misc';
}

export const OPEN_TO_SIDE_TOOLTIP = 'Open to the Side';

/** 1-based line of the symbol's name, as people and `path:line` links count. */
export function displayLine(item: SearchItem): number {
  return item.selectionRange.start.line + 1;
}

export function displayPath(item: SearchItem, showFolder: boolean): string {
  const rel = `${item.path}:${displayLine(item)}`;
  if (!showFolder) return rel;
  const folder = basename(item.workspaceFolder);
  return folder ? `${folder}/${rel}` : rel;
}

/** A short tag for anything that is not implementation code ("[test]"), else "". */
export function contentTag(item: SearchItem): string {
  return item.content && item.content !== 'code' ? `[${item.content}]` : '';
}

export function toQuickPickItem(item: SearchItem, showFolder: boolean): ResultQuickPickItem {
  const name = item.name || '(anonymous)';
  const container = item.containerName ? `  ${item.containerName}` : '';
  const tag = contentTag(item);
  const preview = item.preview.trim();
  return {
    label: `$(${symbolIcon(item.kind)})`,
    description: `${name}${container}  ·  ${displayPath(item, showFolder)}${tag ? `  ${tag}` : ''}`,
    detail: preview || undefined,
    alwaysShow: true,
    buttons: [{ iconPath: new vscode.ThemeIcon('split-horizontal'), tooltip: OPEN_TO_SIDE_TOOLTIP }],
    result: item,
  };
}

/** Rows in the server's order; the folder is shown only when results span several roots. */
export function toQuickPickItems(items: readonly SearchItem[]): ResultQuickPickItem[] {
  const folders = new Set(items.map((i) => i.workspaceFolder));
  const showFolder = folders.size > 1;
  return items.map((i) => toQuickPickItem(i, showFolder));
}

/** Identity of a result across the two phases (the same chunk keeps uri and range). */
export function resultKey(item: SearchItem): string {
  const r = item.range;
  return `${item.uri}#${r.start.line}:${r.start.character}-${r.end.line}:${r.end.character}`;
}

export function toRange(range: LspRange): vscode.Range {
  return new vscode.Range(range.start.line, range.start.character, range.end.line, range.end.character);
}

export interface ResultLocation {
  uri: vscode.Uri;
  /** Where the cursor goes: the symbol's name. */
  selection: vscode.Range;
  /** What should be visible: from the symbol's start to its name. */
  reveal: vscode.Range;
}

export function toLocation(item: SearchItem): ResultLocation {
  const selection = toRange(item.selectionRange);
  const start = toRange(item.range).start;
  const reveal = new vscode.Range(start.isBefore(selection.start) ? start : selection.start, selection.end);
  return { uri: vscode.Uri.parse(item.uri), selection, reveal };
}

function basename(uri: string): string {
  const trimmed = uri.replace(/\/+$/, '');
  const slash = trimmed.lastIndexOf('/');
  return decodeURIComponent(slash >= 0 ? trimmed.slice(slash + 1) : trimmed);
}
