/**
 * The "Search Code by Meaning" QuickPick.
 *
 * Flow: every keystroke (debounced) supersedes the previous search: its timer is
 * cleared, its in-flight request is cancelled through the CancellationToken (the
 * client sends `$/cancelRequest`), and a pending rerank is cancelled with
 * `semcode/cancelSearch`. The first-stage list is shown as soon as the response
 * arrives; when `semcode/searchRefined` arrives for the *current* `searchId`, the list
 * is replaced by the reranked one. Results of superseded searches are dropped, so the
 * list never jumps back to an older query. The server's order is always kept.
 *
 * Everything editor-related goes through `Navigator` and every server call through
 * `SearchBackend`, so the flow is unit-tested against a vscode stub and fake timers.
 */
import * as vscode from 'vscode';
import type { Navigator } from './navigator';
import {
  ErrorCodes,
  type RelatedParams,
  type SearchItem,
  type SearchParams,
  type SearchRefinedParams,
  type SearchResult,
} from './protocol';
import { OPEN_TO_SIDE_TOOLTIP, resultKey, toQuickPickItems, type ResultQuickPickItem } from './results';
import type { SearchSettings } from './settings';

export interface SearchBackend {
  search(params: SearchParams, token: vscode.CancellationToken): Promise<SearchResult>;
  related(params: RelatedParams, token: vscode.CancellationToken): Promise<SearchResult>;
  cancelSearch(searchId: string): void;
  readonly onDidRefine: vscode.Event<SearchRefinedParams>;
}

export interface SearchQuickPickOptions {
  /** Text to put in the input box (Search Selection). */
  initialQuery?: string;
  /** A request to show at once instead of a query (Find Related Code). */
  initialRequest?: { title: string; run: (token: vscode.CancellationToken) => Promise<SearchResult> };
}

const TITLE = 'semcode: Search Code by Meaning';
const PLACEHOLDER = 'Describe the code you are looking for, e.g. "where do we refresh expired tokens"';
/** Refinements that arrive before their search's response resolves (bounded). */
const EARLY_REFINED_MAX = 8;

export class SearchQuickPick implements vscode.Disposable {
  private readonly picker: vscode.QuickPick<ResultQuickPickItem>;
  private readonly disposables: vscode.Disposable[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private cts: vscode.CancellationTokenSource | undefined;
  /** Bumped by every new search; a response whose generation is stale is dropped. */
  private generation = 0;
  private inFlight = false;
  private currentSearchId: string | undefined;
  private rerankPending = false;
  private readonly earlyRefined = new Map<string, SearchRefinedParams>();
  private notices: string[] = [];
  private phase = '';
  private baseTitle = TITLE;
  private acceptWhenReady = false;
  private accepted = false;
  private disposed = false;

  constructor(
    private readonly backend: SearchBackend,
    private readonly navigator: Navigator,
    private readonly settings: SearchSettings,
    options: SearchQuickPickOptions = {},
  ) {
    const picker = vscode.window.createQuickPick<ResultQuickPickItem>();
    this.picker = picker;
    picker.placeholder = PLACEHOLDER;
    picker.matchOnDescription = false;
    picker.matchOnDetail = false;
    picker.title = TITLE;
    this.disposables.push(
      picker,
      picker.onDidChangeValue((value) => this.schedule(value, this.settings.debounceMs)),
      picker.onDidChangeActive((active) => this.onActive(active)),
      picker.onDidAccept(() => this.onAccept()),
      picker.onDidTriggerItemButton((e) => this.onItemButton(e)),
      picker.onDidHide(() => this.onHide()),
      backend.onDidRefine((params) => this.onRefined(params)),
    );

    if (options.initialRequest) {
      this.baseTitle = options.initialRequest.title;
      this.run(options.initialRequest.run);
    } else if (options.initialQuery) {
      picker.value = options.initialQuery;
      // A selection is a finished query: no reason to wait for more keystrokes.
      this.schedule(options.initialQuery, 0);
    }
    this.render();
  }

  show(): void {
    this.picker.show();
  }

  /** For tests and diagnostics. */
  get quickPick(): vscode.QuickPick<ResultQuickPickItem> {
    return this.picker;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.supersede();
    for (const d of this.disposables) d.dispose();
  }

  private schedule(value: string, delayMs: number): void {
    this.supersede();
    const query = value.trim();
    if (!query) {
      this.picker.items = [];
      this.notices = [];
      this.phase = '';
      this.render();
      return;
    }
    this.picker.busy = true;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.run((token) =>
        this.backend.search({ query, limit: this.settings.limit, mode: this.settings.mode }, token),
      );
    }, delayMs);
  }

  /** Stop whatever the previous search still has going: timer, request, rerank. */
  private supersede(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.generation++;
    if (this.cts) {
      this.cts.cancel();
      this.cts.dispose();
      this.cts = undefined;
    }
    this.inFlight = false;
    if (this.currentSearchId !== undefined && this.rerankPending) {
      this.backend.cancelSearch(this.currentSearchId);
    }
    this.rerankPending = false;
    this.currentSearchId = undefined;
    this.earlyRefined.clear();
    this.picker.busy = false;
  }

  private run(request: (token: vscode.CancellationToken) => Promise<SearchResult>): void {
    this.supersede();
    const generation = this.generation;
    const cts = new vscode.CancellationTokenSource();
    this.cts = cts;
    this.inFlight = true;
    this.picker.busy = true;
    request(cts.token).then(
      (result) => {
        if (generation !== this.generation || this.disposed) return;
        this.finishRequest();
        this.applyFirstPhase(result);
      },
      (err: unknown) => {
        if (generation !== this.generation || this.disposed) return;
        this.finishRequest();
        if (isCancellation(err)) return;
        this.picker.items = [];
        this.notices = [`search failed: ${errorMessage(err)}`];
        this.phase = '';
        this.render();
      },
    );
  }

  private finishRequest(): void {
    this.inFlight = false;
    this.cts?.dispose();
    this.cts = undefined;
    this.picker.busy = false;
  }

  private applyFirstPhase(result: SearchResult): void {
    this.currentSearchId = result.searchId;
    this.rerankPending = result.rerankPending;
    this.notices = result.notices ?? [];
    this.phase = result.reranked ? 'reranked' : result.rerankPending ? 'reranking…' : '';
    this.setItems(result.items, false);
    this.picker.busy = this.rerankPending;
    this.render();

    const early = this.earlyRefined.get(result.searchId);
    this.earlyRefined.clear();
    if (early && this.rerankPending) this.applyRefined(early);

    if (this.acceptWhenReady) {
      this.acceptWhenReady = false;
      const first = this.picker.items[0];
      if (first) this.acceptItem(first, false);
    }
  }

  private onRefined(params: SearchRefinedParams): void {
    if (this.disposed) return;
    if (params.searchId === this.currentSearchId && this.rerankPending) {
      this.applyRefined(params);
    } else if (this.inFlight && this.currentSearchId === undefined) {
      // The notification can overtake the resolution of its own request's promise;
      // keep it until the response says which searchId is current.
      if (this.earlyRefined.size >= EARLY_REFINED_MAX) this.earlyRefined.clear();
      this.earlyRefined.set(params.searchId, params);
    }
    // Otherwise it belongs to a search the user has moved on from: ignore it.
  }

  private applyRefined(params: SearchRefinedParams): void {
    this.rerankPending = false;
    this.picker.busy = false;
    if (params.reranked) {
      this.phase = 'reranked';
      this.setItems(params.items, true);
    } else {
      // Rerank failed or was cancelled: the first-stage list stays, and we say why.
      this.phase = params.error ? `rerank failed: ${params.error}` : params.cancelled ? 'rerank cancelled' : '';
    }
    this.render();
  }

  private setItems(items: readonly SearchItem[], keepActive: boolean): void {
    const previous = keepActive ? this.picker.activeItems[0] : undefined;
    const wasFirst = previous !== undefined && this.picker.items[0] === previous;
    const rows = toQuickPickItems(items);
    this.picker.items = rows;
    // After the rerank swap, stay on the row the user had moved to (if it survived);
    // if they had not moved, the new best result becomes active as usual.
    if (previous && !wasFirst) {
      const key = resultKey(previous.result);
      const same = rows.find((row) => resultKey(row.result) === key);
      if (same) this.picker.activeItems = [same];
    }
  }

  private render(): void {
    // Notices (e.g. "semantic search is off: …") go into the title: the placeholder is
    // hidden as soon as the user has typed, which is exactly when notices arrive.
    const parts = [this.baseTitle];
    if (this.phase) parts.push(this.phase);
    parts.push(...this.notices);
    this.picker.title = parts.join('  ·  ');
  }

  private onActive(active: readonly ResultQuickPickItem[]): void {
    const item = active[0];
    if (item && !this.accepted) void this.navigator.preview(item.result);
  }

  private onAccept(): void {
    const item = this.picker.selectedItems[0] ?? this.picker.activeItems[0];
    if (item) {
      this.acceptItem(item, false);
    } else if (this.timer !== undefined || this.inFlight) {
      // Enter typed before the results came: open the best one when it arrives.
      this.acceptWhenReady = true;
    }
  }

  private onItemButton(e: vscode.QuickPickItemButtonEvent<ResultQuickPickItem>): void {
    if (e.button.tooltip === OPEN_TO_SIDE_TOOLTIP) this.acceptItem(e.item, true);
  }

  private acceptItem(item: ResultQuickPickItem, side: boolean): void {
    this.accepted = true;
    this.picker.hide();
    void this.navigator.open(item.result, side);
  }

  private onHide(): void {
    if (!this.accepted) void this.navigator.restore();
    this.dispose();
  }
}

export function isCancellation(err: unknown): boolean {
  if (err instanceof vscode.CancellationError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return code === ErrorCodes.RequestCancelled;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
