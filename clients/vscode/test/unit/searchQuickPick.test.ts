import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as vscode from 'vscode';
import type { Navigator } from '../../src/navigator';
import type { RelatedParams, SearchItem, SearchParams, SearchRefinedParams, SearchResult } from '../../src/protocol';
import type { ResultQuickPickItem } from '../../src/results';
import { SearchQuickPick, type SearchBackend } from '../../src/searchQuickPick';
import { testing, type FakeQuickPick } from '../stub/vscode';
import { item, result } from './fixtures';

interface Call {
  params: SearchParams;
  token: vscode.CancellationToken;
  resolve(r: SearchResult): void;
  reject(e: unknown): void;
}

class FakeBackend implements SearchBackend {
  readonly calls: Call[] = [];
  readonly related_: RelatedParams[] = [];
  readonly cancelled: string[] = [];
  private readonly emitter = new vscode.EventEmitter<SearchRefinedParams>();
  readonly onDidRefine = this.emitter.event;
  search(params: SearchParams, token: vscode.CancellationToken): Promise<SearchResult> {
    return new Promise((resolve, reject) => this.calls.push({ params, token, resolve, reject }));
  }
  related(params: RelatedParams, token: vscode.CancellationToken): Promise<SearchResult> {
    this.related_.push(params);
    return new Promise((resolve, reject) => this.calls.push({ params: { query: '' }, token, resolve, reject }));
  }
  cancelSearch(searchId: string): void {
    this.cancelled.push(searchId);
  }
  refine(params: SearchRefinedParams): void {
    this.emitter.fire(params);
  }
}

class FakeNavigator implements Navigator {
  readonly previews: string[] = [];
  readonly opens: { name: string; side: boolean }[] = [];
  restores = 0;
  async preview(i: SearchItem): Promise<void> {
    this.previews.push(i.name);
  }
  async open(i: SearchItem, side: boolean): Promise<void> {
    this.opens.push({ name: i.name, side });
  }
  async restore(): Promise<void> {
    this.restores++;
  }
}

const settings = { limit: 25, debounceMs: 200, mode: 'hybrid' as const };
const names = (qp: FakeQuickPick<ResultQuickPickItem>) => qp.items.map((i) => i.result.name);
const flush = () => new Promise<void>((r) => queueMicrotask(r)).then(() => Promise.resolve());

describe('SearchQuickPick', () => {
  let backend: FakeBackend;
  let nav: FakeNavigator;

  beforeEach(() => {
    vi.useFakeTimers();
    testing.reset();
    backend = new FakeBackend();
    nav = new FakeNavigator();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function open(options = {}) {
    const sqp = new SearchQuickPick(backend, nav, settings, options);
    sqp.show();
    return { sqp, qp: testing.lastQuickPick<ResultQuickPickItem>() };
  }

  it('debounces keystrokes into one request with the configured limit and mode', async () => {
    const { qp } = open();
    qp.type('w');
    vi.advanceTimersByTime(100);
    qp.type('wh');
    vi.advanceTimersByTime(100);
    qp.type('where tokens');
    vi.advanceTimersByTime(199);
    expect(backend.calls).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(backend.calls).toHaveLength(1);
    expect(backend.calls[0]!.params).toEqual({ query: 'where tokens', limit: 25, mode: 'hybrid' });
    expect(qp.busy).toBe(true);
  });

  it('cancels the superseded request through its token and drops its late response', async () => {
    const { qp } = open();
    qp.type('first query');
    vi.advanceTimersByTime(200);
    const first = backend.calls[0]!;
    expect(first.token.isCancellationRequested).toBe(false);
    qp.type('second query');
    expect(first.token.isCancellationRequested).toBe(true);
    vi.advanceTimersByTime(200);
    const second = backend.calls[1]!;
    second.resolve(result('s2', ['b1', 'b2']));
    await flush();
    first.resolve(result('s1', ['stale']));
    await flush();
    expect(names(qp)).toEqual(['b1', 'b2']);
  });

  it('shows the first stage at once, then swaps in the reranked list for the current searchId', async () => {
    const { qp } = open();
    qp.type('refresh expired tokens');
    vi.advanceTimersByTime(200);
    backend.calls[0]!.resolve(result('s1', ['c', 'a', 'b'], { rerankPending: true }));
    await flush();
    expect(names(qp)).toEqual(['c', 'a', 'b']);
    expect(qp.busy).toBe(true);
    expect(qp.title).toContain('reranking');

    backend.refine({ searchId: 'other', items: [item('zzz')], reranked: true });
    expect(names(qp)).toEqual(['c', 'a', 'b']);

    backend.refine({ searchId: 's1', items: ['b', 'c', 'a'].map((n) => item(n)), reranked: true });
    // Server order, not alphabetical nor by label.
    expect(names(qp)).toEqual(['b', 'c', 'a']);
    expect(qp.busy).toBe(false);
    expect(qp.title).toContain('reranked');
  });

  it('keeps the server order and neutral labels even when names match the query', async () => {
    const { qp } = open();
    qp.type('zeta alpha');
    vi.advanceTimersByTime(200);
    backend.calls[0]!.resolve(result('s1', ['zeta', 'alpha', 'mid']));
    await flush();
    expect(names(qp)).toEqual(['zeta', 'alpha', 'mid']);
    for (const row of qp.items) {
      expect(row.label).toMatch(/^\$\([a-z-]+\)$/);
      expect(row.alwaysShow).toBe(true);
    }
    expect(qp.matchOnDescription).toBe(false);
    expect(qp.matchOnDetail).toBe(false);
  });

  it('applies a refinement that overtakes its own response', async () => {
    const { qp } = open();
    qp.type('q');
    vi.advanceTimersByTime(200);
    backend.refine({ searchId: 's9', items: [item('late'), item('early')], reranked: true });
    backend.calls[0]!.resolve(result('s9', ['early', 'late'], { rerankPending: true }));
    await flush();
    expect(names(qp)).toEqual(['late', 'early']);
    expect(qp.busy).toBe(false);
  });

  it('ignores the refinement of a search the user moved on from, and cancels its rerank', async () => {
    const { qp } = open();
    qp.type('one');
    vi.advanceTimersByTime(200);
    backend.calls[0]!.resolve(result('s1', ['x1'], { rerankPending: true }));
    await flush();
    qp.type('two');
    expect(backend.cancelled).toEqual(['s1']);
    vi.advanceTimersByTime(200);
    backend.calls[1]!.resolve(result('s2', ['y1', 'y2'], { rerankPending: true }));
    await flush();
    backend.refine({ searchId: 's1', items: [item('x1')], reranked: true });
    expect(names(qp)).toEqual(['y1', 'y2']);
  });

  it('keeps the first stage and says why when the rerank fails', async () => {
    const { qp } = open();
    qp.type('q');
    vi.advanceTimersByTime(200);
    backend.calls[0]!.resolve(result('s1', ['a', 'b'], { rerankPending: true }));
    await flush();
    backend.refine({ searchId: 's1', items: [item('a'), item('b')], reranked: false, error: 'model crashed' });
    expect(names(qp)).toEqual(['a', 'b']);
    expect(qp.title).toContain('rerank failed: model crashed');
    expect(qp.busy).toBe(false);
  });

  it('stays on the row the user moved to when the reranked list arrives', async () => {
    const { qp } = open();
    qp.type('q');
    vi.advanceTimersByTime(200);
    backend.calls[0]!.resolve(result('s1', ['a', 'b', 'c'], { rerankPending: true }));
    await flush();
    qp.activeItems = [qp.items[2]!];
    backend.refine({ searchId: 's1', items: ['b', 'c', 'a'].map((n) => item(n)), reranked: true });
    expect(qp.activeItems[0]!.result.name).toBe('c');
  });

  it('previews the active item and opens the accepted one at its location', async () => {
    const { qp } = open();
    qp.type('q');
    vi.advanceTimersByTime(200);
    backend.calls[0]!.resolve(result('s1', ['a', 'b']));
    await flush();
    expect(nav.previews).toEqual(['a']);
    qp.activeItems = [qp.items[1]!];
    expect(nav.previews).toEqual(['a', 'b']);
    qp.accept();
    expect(nav.opens).toEqual([{ name: 'b', side: false }]);
    expect(qp.visible).toBe(false);
    expect(nav.restores).toBe(0);
  });

  it('opens to the side from the item button', async () => {
    const { qp } = open();
    qp.type('q');
    vi.advanceTimersByTime(200);
    backend.calls[0]!.resolve(result('s1', ['a', 'b']));
    await flush();
    qp.triggerButton(qp.items[1]!, 'Open to the Side');
    expect(nav.opens).toEqual([{ name: 'b', side: true }]);
  });

  it('opens the best result when Enter comes before the results', async () => {
    const { qp } = open();
    qp.type('q');
    qp.accept();
    vi.advanceTimersByTime(200);
    backend.calls[0]!.resolve(result('s1', ['best', 'next']));
    await flush();
    expect(nav.opens).toEqual([{ name: 'best', side: false }]);
  });

  it('on Escape restores the editor and cancels the pending rerank', async () => {
    const { qp } = open();
    qp.type('q');
    vi.advanceTimersByTime(200);
    backend.calls[0]!.resolve(result('s1', ['a'], { rerankPending: true }));
    await flush();
    qp.hide();
    expect(nav.restores).toBe(1);
    expect(backend.cancelled).toEqual(['s1']);
    expect(qp.disposed).toBe(true);
  });

  it('clears the list for an empty query without asking the server', async () => {
    const { qp } = open();
    qp.type('q');
    vi.advanceTimersByTime(200);
    backend.calls[0]!.resolve(result('s1', ['a']));
    await flush();
    qp.type('   ');
    vi.advanceTimersByTime(1000);
    expect(backend.calls).toHaveLength(1);
    expect(qp.items).toEqual([]);
    expect(qp.busy).toBe(false);
  });

  it('shows notices and errors instead of failing silently', async () => {
    const { qp } = open();
    qp.type('q');
    vi.advanceTimersByTime(200);
    backend.calls[0]!.resolve(result('s1', ['a'], { mode: 'lexical', notices: ['semantic search is off: no embedding model'] }));
    await flush();
    expect(qp.title).toContain('semantic search is off');
    qp.type('q2');
    vi.advanceTimersByTime(200);
    backend.calls[1]!.reject(new Error('boom'));
    await flush();
    expect(qp.title).toContain('search failed: boom');
    expect(qp.title).not.toContain('semantic search is off');
  });

  it('does not report a cancelled request as an error', async () => {
    const { qp } = open();
    qp.type('q');
    vi.advanceTimersByTime(200);
    backend.calls[0]!.reject(Object.assign(new Error('cancelled'), { code: -32800 }));
    await flush();
    expect(qp.title).not.toContain('failed');
  });

  it('searches a selection at once (no debounce)', async () => {
    const { qp } = open({ initialQuery: 'retry with backoff' });
    expect(qp.value).toBe('retry with backoff');
    vi.advanceTimersByTime(0);
    expect(backend.calls[0]!.params.query).toBe('retry with backoff');
  });

  it('shows related code from an initial request, and typing switches to search', async () => {
    const params: RelatedParams = { textDocument: { uri: 'file:///proj/a.py' }, position: { line: 1, character: 2 } };
    const { qp } = open({ initialRequest: { title: 'Related to foo', run: (t: vscode.CancellationToken) => backend.related(params, t) } });
    expect(backend.related_).toEqual([params]);
    expect(qp.title).toContain('Related to foo');
    backend.calls[0]!.resolve(result('r1', ['sim1', 'sim2']));
    await flush();
    expect(names(qp)).toEqual(['sim1', 'sim2']);
    qp.type('something else');
    vi.advanceTimersByTime(200);
    expect(backend.calls[1]!.params.query).toBe('something else');
  });
});
