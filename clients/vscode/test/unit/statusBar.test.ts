import { describe, expect, it } from 'vitest';
import type { Status } from '../../src/protocol';
import { progressText, statusReport, statusView } from '../../src/statusBar';

const base: Status = {
  version: '0.1.0',
  protocolVersion: 1,
  state: 'ready',
  degraded: [],
  models: {
    embedder: { state: 'loaded', identity: 'Qwen3-Embedding-0.6B-Q8_0', backend: 'llama.cpp', device: 'cpu', dims: 1024 },
    reranker: { state: 'loaded', identity: 'qwen3-reranker-0.6b-q8_0', backend: 'llama.cpp', device: 'cpu' },
  },
  workspaces: [{ root: '/home/me/proj', files: 812, chunks: 9123, embedded: 9123, pendingEmbeddings: 0, progress: null }],
};

describe('status bar', () => {
  it('shows progress while indexing and embedding', () => {
    const s: Status = {
      ...base,
      state: 'embedding',
      workspaces: [{ root: '/p', progress: { stage: 'embed', done: 4100, total: 9123, message: 'embedding 4100/9123 chunks' } }],
    };
    expect(statusView({ kind: 'running', status: s }).text).toBe('$(sync~spin) semcode: embedding 44%');
    expect(progressText([])).toBe('');
  });

  it('shows ready, degraded (lexical only / no rerank) and stopped states', () => {
    expect(statusView({ kind: 'running', status: base }).text).toBe('$(check) semcode');
    const lexical: Status = {
      ...base,
      degraded: ['semantic search is off: no embedding model'],
      models: { embedder: { state: 'off' }, reranker: { state: 'off' } },
    };
    const v = statusView({ kind: 'running', status: lexical });
    expect(v.text).toBe('$(warning) semcode: lexical only');
    expect(v.warning).toBe(true);
    expect(v.tooltip).toContain('semantic search is off');
    const noRerank: Status = { ...base, degraded: ['reranker missing'], models: { ...base.models, reranker: { state: 'missing' } } };
    expect(statusView({ kind: 'running', status: noRerank }).text).toBe('$(warning) semcode: no rerank');
    expect(statusView({ kind: 'stopped', reason: 'semcode is not installed' })).toMatchObject({ error: true });
  });

  it('lists models and workspaces in the tooltip and the report', () => {
    const tip = statusView({ kind: 'running', status: base }).tooltip;
    expect(tip).toContain('embedder: loaded Qwen3-Embedding-0.6B-Q8_0 (llama.cpp, cpu)');
    const report = statusReport(base);
    expect(report).toContain('1024 dimensions');
    expect(report).toContain('/home/me/proj');
    expect(report).toContain('files 812');
  });
});
