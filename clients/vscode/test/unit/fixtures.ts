import type { SearchItem, SearchResult } from '../../src/protocol';

export function item(name: string, overrides: Partial<SearchItem> = {}): SearchItem {
  const line = overrides.range?.start.line ?? name.length * 3;
  return {
    uri: `file:///proj/src/${name}.py`,
    path: `src/${name}.py`,
    workspaceFolder: 'file:///proj',
    range: { start: { line, character: 0 }, end: { line: line + 5, character: 0 } },
    selectionRange: { start: { line: line + 1, character: 4 }, end: { line: line + 1, character: 4 + name.length } },
    name,
    kind: 12,
    containerName: '',
    language: 'python',
    preview: `def ${name}():`,
    score: 1,
    ...overrides,
  };
}

export function result(searchId: string, names: string[], extra: Partial<SearchResult> = {}): SearchResult {
  return {
    searchId,
    items: names.map((n) => item(n)),
    reranked: false,
    rerankPending: false,
    mode: 'hybrid',
    notices: [],
    ...extra,
  };
}
