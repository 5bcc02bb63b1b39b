/**
 * The status bar item: what the server is doing (indexing / embedding progress), which
 * models run, and whether search is degraded. Fed by `semcode/status` notifications;
 * clicking it runs `semcode.showStatus`. Text formatting is pure (unit-tested).
 */
import * as vscode from 'vscode';
import type { ModelStatus, Status, WorkspaceStatus } from './protocol';

export const SHOW_STATUS_COMMAND = 'semcode.showStatus';

export type ClientState =
  | { kind: 'starting' }
  | { kind: 'running'; status: Status | undefined }
  | { kind: 'stopped'; reason: string };

export interface StatusView {
  text: string;
  tooltip: string;
  warning: boolean;
  error: boolean;
}

export function statusView(state: ClientState): StatusView {
  switch (state.kind) {
    case 'starting':
      return { text: '$(loading~spin) semcode', tooltip: 'semcode: starting the server…', warning: false, error: false };
    case 'stopped':
      return {
        text: '$(circle-slash) semcode',
        tooltip: `semcode: server not running — ${state.reason}`,
        warning: false,
        error: true,
      };
    case 'running':
      return runningView(state.status);
  }
}

function runningView(status: Status | undefined): StatusView {
  if (!status) {
    return { text: '$(loading~spin) semcode', tooltip: 'semcode: waiting for status…', warning: false, error: false };
  }
  const degraded = status.degraded ?? [];
  const tooltip = statusTooltip(status);
  const progress = progressText(status.workspaces ?? []);
  switch (status.state) {
    case 'error':
      return { text: '$(error) semcode', tooltip, warning: false, error: true };
    case 'starting':
      return { text: '$(loading~spin) semcode', tooltip, warning: false, error: false };
    case 'indexing':
    case 'embedding':
      return {
        text: `$(sync~spin) semcode: ${progress || status.state}`,
        tooltip,
        warning: false,
        error: false,
      };
    case 'ready':
    default:
      if (degraded.length > 0) {
        return { text: `$(warning) semcode: ${degradedLabel(status)}`, tooltip, warning: true, error: false };
      }
      return { text: '$(check) semcode', tooltip, warning: false, error: false };
  }
}

/** `indexing 1200/3400` / `embedding 41%`, summed over workspace folders. */
export function progressText(workspaces: readonly WorkspaceStatus[]): string {
  let stage = '';
  let done = 0;
  let total = 0;
  for (const ws of workspaces) {
    const p = ws.progress;
    if (!p || p.total <= 0) continue;
    stage ||= p.stage === 'embed' ? 'embedding' : p.stage === 'chunk' || p.stage === 'scan' ? 'indexing' : p.stage;
    done += p.done;
    total += p.total;
  }
  if (total <= 0) return stage;
  const pct = Math.floor((100 * Math.min(done, total)) / total);
  return `${stage} ${pct}%`;
}

/** Short reason for the status bar: which half of search is missing. */
function degradedLabel(status: Status): string {
  const embedder = status.models?.embedder?.state;
  if (embedder && embedder !== 'loaded' && embedder !== 'loading') return 'lexical only';
  const reranker = status.models?.reranker?.state;
  if (reranker && reranker !== 'loaded' && reranker !== 'loading') return 'no rerank';
  return 'degraded';
}

export function statusTooltip(status: Status): string {
  const lines = [`semcode ${status.version ?? ''} — ${status.state}`.trim()];
  lines.push(`embedder: ${modelLine(status.models?.embedder)}`);
  lines.push(`reranker: ${modelLine(status.models?.reranker)}`);
  for (const ws of status.workspaces ?? []) {
    const p = ws.progress?.message ? ` — ${ws.progress.message}` : '';
    lines.push(`${ws.root}: ${ws.files ?? 0} files, ${ws.chunks ?? 0} chunks, ${ws.embedded ?? 0} embedded${p}`);
  }
  for (const d of status.degraded ?? []) lines.push(`⚠ ${d}`);
  lines.push('Click for details');
  return lines.join('\n');
}

function modelLine(model: ModelStatus | undefined): string {
  if (!model) return 'unknown';
  const name = model.identity || model.path || '';
  const where = [model.backend, model.device].filter(Boolean).join(', ');
  const parts: string[] = [model.state];
  if (model.builtin) parts.push('built-in');
  if (name) parts.push(name);
  if (where) parts.push(`(${where})`);
  if (model.message) parts.push(`— ${model.message}`);
  if (model.quality) parts.push(`— ${model.quality}`);
  return parts.join(' ');
}

/** The full report written to the output channel by `semcode.showStatus`. */
export function statusReport(status: Status): string {
  const out: string[] = [];
  out.push(`semcode ${status.version ?? '?'} (protocol ${status.protocolVersion ?? '?'}) — state: ${status.state}`);
  out.push('');
  out.push('Models');
  out.push(`  embedder: ${modelLine(status.models?.embedder)}`);
  if (status.models?.embedder?.dims) out.push(`            ${status.models.embedder.dims} dimensions`);
  out.push(`  reranker: ${modelLine(status.models?.reranker)}`);
  out.push('');
  out.push('Workspaces');
  for (const ws of status.workspaces ?? []) {
    out.push(`  ${ws.root}${ws.state ? ` — ${ws.state}` : ''}`);
    if (ws.error) out.push(`    error: ${ws.error}`);
    out.push(`    files ${ws.files ?? 0}, skipped ${ws.skippedFiles ?? 0}, chunks ${ws.chunks ?? 0}`);
    out.push(`    embedded ${ws.embedded ?? 0}, pending ${ws.pendingEmbeddings ?? 0}`);
    if (ws.progress) out.push(`    progress: ${ws.progress.message || `${ws.progress.stage} ${ws.progress.done}/${ws.progress.total}`}`);
    if (ws.indexDir) out.push(`    index: ${ws.indexDir}${ws.indexBytes ? ` (${(ws.indexBytes / 1e6).toFixed(1)} MB)` : ''}`);
  }
  if ((status.workspaces ?? []).length === 0) out.push('  (none)');
  const degraded = status.degraded ?? [];
  if (degraded.length) {
    out.push('');
    out.push('Degraded');
    for (const d of degraded) out.push(`  - ${d}`);
  }
  return out.join('\n');
}

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private state: ClientState = { kind: 'starting' };

  constructor() {
    this.item = vscode.window.createStatusBarItem('semcode.status', vscode.StatusBarAlignment.Left, 0);
    this.item.name = 'semcode';
    this.item.command = SHOW_STATUS_COMMAND;
    this.render();
    this.item.show();
  }

  get current(): ClientState {
    return this.state;
  }

  setState(state: ClientState): void {
    this.state = state;
    this.render();
  }

  update(status: Status): void {
    this.setState({ kind: 'running', status });
  }

  private render(): void {
    const view = statusView(this.state);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.error
      ? new vscode.ThemeColor('statusBarItem.errorBackground')
      : view.warning
        ? new vscode.ThemeColor('statusBarItem.warningBackground')
        : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
