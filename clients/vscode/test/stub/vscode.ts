/**
 * A small, behaviour-faithful stand-in for the `vscode` module, for unit tests and for
 * running the real `LanguageClient` outside VS Code (integration test).
 *
 * Only what the extension and vscode-languageclient touch is modelled; the rest of the
 * API surface is filled by `vscodeProxy` (a generic no-op) when loaded through
 * `require('vscode')` from node_modules. Test helpers live on `testing`.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */

// ---------- basics ----------
export class Disposable {
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((i) => i.dispose()));
  }
  constructor(private readonly fn: () => unknown = () => undefined) {}
  dispose(): void {
    this.fn();
  }
}

export type Event<T> = (listener: (e: T) => unknown, thisArg?: unknown, disposables?: Disposable[]) => Disposable;

export class EventEmitter<T> {
  private listeners = new Set<(e: T) => unknown>();
  readonly event: Event<T> = (listener, thisArg, disposables) => {
    const bound = thisArg ? listener.bind(thisArg) : listener;
    this.listeners.add(bound);
    const d = new Disposable(() => this.listeners.delete(bound));
    disposables?.push(d);
    return d;
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  dispose(): void {
    this.listeners.clear();
  }
}

export class CancellationError extends Error {
  constructor() {
    super('Canceled');
    this.name = 'Canceled';
  }
}

export interface CancellationToken {
  isCancellationRequested: boolean;
  onCancellationRequested: Event<unknown>;
}

export class CancellationTokenSource {
  private emitter = new EventEmitter<unknown>();
  private cancelled = false;
  readonly token: CancellationToken;
  constructor() {
    const self = this;
    this.token = {
      get isCancellationRequested() {
        return self.cancelled;
      },
      onCancellationRequested: (listener, thisArg, disposables) => {
        if (self.cancelled) {
          listener.call(thisArg, undefined);
          return new Disposable();
        }
        return self.emitter.event(listener, thisArg, disposables);
      },
    };
  }
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emitter.fire(undefined);
  }
  dispose(): void {
    this.emitter.dispose();
  }
}

// ---------- positions ----------
export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
  isBefore(other: Position): boolean {
    return this.line < other.line || (this.line === other.line && this.character < other.character);
  }
  isAfter(other: Position): boolean {
    return other.isBefore(this);
  }
  isEqual(other: Position): boolean {
    return this.line === other.line && this.character === other.character;
  }
  isBeforeOrEqual(other: Position): boolean {
    return this.isBefore(other) || this.isEqual(other);
  }
  translate(lineDelta = 0, characterDelta = 0): Position {
    return new Position(this.line + lineDelta, this.character + characterDelta);
  }
  with(line = this.line, character = this.character): Position {
    return new Position(line, character);
  }
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: Position | number, b: Position | number, c?: number, d?: number) {
    if (typeof a === 'number') {
      this.start = new Position(a, b as number);
      this.end = new Position(c as number, d as number);
    } else {
      this.start = a;
      this.end = b as Position;
    }
  }
  get isEmpty(): boolean {
    return this.start.isEqual(this.end);
  }
  get isSingleLine(): boolean {
    return this.start.line === this.end.line;
  }
  contains(p: Position | Range): boolean {
    if (p instanceof Range) return this.contains(p.start) && this.contains(p.end);
    return !p.isBefore(this.start) && !this.end.isBefore(p);
  }
  isEqual(other: Range): boolean {
    return this.start.isEqual(other.start) && this.end.isEqual(other.end);
  }
  with(start = this.start, end = this.end): Range {
    return new Range(start, end);
  }
}

export class Selection extends Range {
  readonly anchor: Position;
  readonly active: Position;
  constructor(anchor: Position | number, active: Position | number, c?: number, d?: number) {
    const a = typeof anchor === 'number' ? new Position(anchor, active as number) : anchor;
    const b = typeof anchor === 'number' ? new Position(c as number, d as number) : (active as Position);
    super(a.isBefore(b) ? a : b, a.isBefore(b) ? b : a);
    this.anchor = a;
    this.active = b;
  }
  get isReversed(): boolean {
    return this.anchor.isAfter(this.active);
  }
}

export class Location {
  constructor(
    readonly uri: Uri,
    readonly range: Range,
  ) {}
}

// ---------- Uri ----------
export class Uri {
  private constructor(
    readonly scheme: string,
    readonly authority: string,
    readonly path: string,
    readonly query: string,
    readonly fragment: string,
  ) {}
  static parse(value: string): Uri {
    const m = /^([a-zA-Z][\w+.-]*):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/.exec(value);
    if (!m) throw new Error(`bad uri: ${value}`);
    return new Uri(m[1]!, m[2] ?? '', decodeURIComponent(m[3] ?? ''), m[4] ?? '', m[5] ?? '');
  }
  static file(fsPath: string): Uri {
    return new Uri('file', '', fsPath.replace(/\\/g, '/'), '', '');
  }
  static joinPath(base: Uri, ...segments: string[]): Uri {
    const joined = [base.path.replace(/\/+$/, ''), ...segments].join('/').replace(/\/{2,}/g, '/');
    return base.with({ path: joined });
  }
  static from(c: { scheme: string; authority?: string; path?: string; query?: string; fragment?: string }): Uri {
    return new Uri(c.scheme, c.authority ?? '', c.path ?? '', c.query ?? '', c.fragment ?? '');
  }
  static isUri(thing: unknown): thing is Uri {
    return thing instanceof Uri;
  }
  get fsPath(): string {
    return this.path;
  }
  with(change: { scheme?: string; authority?: string; path?: string; query?: string; fragment?: string }): Uri {
    return new Uri(
      change.scheme ?? this.scheme,
      change.authority ?? this.authority,
      change.path ?? this.path,
      change.query ?? this.query,
      change.fragment ?? this.fragment,
    );
  }
  toString(): string {
    const enc = this.path
      .split('/')
      .map((s) => encodeURIComponent(s).replace(/%3A/g, ':'))
      .join('/');
    let s = `${this.scheme}:`;
    if (this.authority || this.scheme === 'file') s += `//${this.authority}`;
    s += enc;
    if (this.query) s += `?${this.query}`;
    if (this.fragment) s += `#${this.fragment}`;
    return s;
  }
  toJSON(): unknown {
    return { scheme: this.scheme, authority: this.authority, path: this.path, query: this.query, fragment: this.fragment };
  }
}

// ---------- enums & small classes ----------
export enum ViewColumn {
  Active = -1,
  Beside = -2,
  One = 1,
  Two = 2,
  Three = 3,
}
export enum TextEditorRevealType {
  Default = 0,
  InCenter = 1,
  InCenterIfOutsideViewport = 2,
  AtTop = 3,
}
export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}
export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}
export enum ConfigurationTarget {
  Global = 1,
  Workspace = 2,
  WorkspaceFolder = 3,
}
export enum DiagnosticSeverity {
  Error = 0,
  Warning = 1,
  Information = 2,
  Hint = 3,
}
export enum EndOfLine {
  LF = 1,
  CRLF = 2,
}
export enum FileType {
  Unknown = 0,
  File = 1,
  Directory = 2,
  SymbolicLink = 64,
}
export enum UIKind {
  Desktop = 1,
  Web = 2,
}
export enum SymbolKind {
  File = 0,
  Module,
  Namespace,
  Package,
  Class,
  Method,
  Property,
  Field,
  Constructor,
  Enum,
  Interface,
  Function,
  Variable,
  Constant,
  String,
  Number,
  Boolean,
  Array,
  Object,
  Key,
  Null,
  EnumMember,
  Struct,
  Event,
  Operator,
  TypeParameter,
}
export enum SymbolTag {
  Deprecated = 1,
}
export class ThemeIcon {
  static readonly File = new ThemeIcon('file');
  static readonly Folder = new ThemeIcon('folder');
  constructor(
    readonly id: string,
    readonly color?: ThemeColor,
  ) {}
}
export class ThemeColor {
  constructor(readonly id: string) {}
}
export class MarkdownString {
  constructor(
    public value = '',
    public supportThemeIcons = false,
  ) {}
  appendText(v: string): this {
    this.value += v;
    return this;
  }
  appendMarkdown(v: string): this {
    this.value += v;
    return this;
  }
  appendCodeblock(v: string): this {
    this.value += v;
    return this;
  }
}
export class SymbolInformation {
  constructor(
    public name: string,
    public kind: SymbolKind,
    public containerName: string,
    public location: Location,
  ) {}
}
export class WorkspaceEdit {}
export class TextEdit {
  constructor(
    public range: Range,
    public newText: string,
  ) {}
}

// ---------- QuickPick ----------
export interface QuickPickItem {
  label: string;
  description?: string;
  detail?: string;
  alwaysShow?: boolean;
  buttons?: readonly { iconPath: unknown; tooltip?: string }[];
}

export class FakeQuickPick<T extends QuickPickItem> {
  value = '';
  placeholder: string | undefined;
  title: string | undefined;
  busy = false;
  matchOnDescription = true;
  matchOnDetail = true;
  keepScrollPosition = false;
  visible = false;
  disposed = false;
  private _items: readonly T[] = [];
  private _active: readonly T[] = [];
  selectedItems: readonly T[] = [];
  /** Every list the picker showed, in order (for phase-swap assertions). */
  readonly itemHistory: (readonly T[])[] = [];

  readonly _onDidChangeValue = new EventEmitter<string>();
  readonly _onDidAccept = new EventEmitter<void>();
  readonly _onDidChangeActive = new EventEmitter<readonly T[]>();
  readonly _onDidChangeSelection = new EventEmitter<readonly T[]>();
  readonly _onDidHide = new EventEmitter<void>();
  readonly _onDidTriggerItemButton = new EventEmitter<{ item: T; button: { tooltip?: string } }>();
  readonly onDidChangeValue = this._onDidChangeValue.event;
  readonly onDidAccept = this._onDidAccept.event;
  readonly onDidChangeActive = this._onDidChangeActive.event;
  readonly onDidChangeSelection = this._onDidChangeSelection.event;
  readonly onDidHide = this._onDidHide.event;
  readonly onDidTriggerItemButton = this._onDidTriggerItemButton.event;
  readonly onDidTriggerButton = new EventEmitter<unknown>().event;

  get items(): readonly T[] {
    return this._items;
  }
  /** Like VS Code: a new list makes its first item active. */
  set items(items: readonly T[]) {
    this._items = items;
    this.itemHistory.push(items);
    this.activeItems = items.length ? [items[0]!] : [];
  }
  get activeItems(): readonly T[] {
    return this._active;
  }
  set activeItems(items: readonly T[]) {
    this._active = items;
    this._onDidChangeActive.fire(items);
  }
  show(): void {
    this.visible = true;
  }
  hide(): void {
    if (!this.visible) return;
    this.visible = false;
    this._onDidHide.fire();
  }
  dispose(): void {
    this.disposed = true;
  }
  // --- test helpers ---
  type(value: string): void {
    this.value = value;
    this._onDidChangeValue.fire(value);
  }
  accept(): void {
    this._onDidAccept.fire();
  }
  triggerButton(item: T, tooltip: string): void {
    this._onDidTriggerItemButton.fire({ item, button: { tooltip } });
  }
}

// ---------- window ----------
export interface ShowCall {
  target: unknown;
  options: any;
}

class FakeOutputChannel {
  readonly lines: string[] = [];
  constructor(readonly name: string) {}
  append(v: string): void {
    this.lines.push(v);
  }
  appendLine(v: string): void {
    this.lines.push(v);
  }
  replace(v: string): void {
    this.lines.length = 0;
    this.lines.push(v);
  }
  clear(): void {
    this.lines.length = 0;
  }
  show(): void {}
  hide(): void {}
  dispose(): void {}
  // LogOutputChannel surface, used by vscode-languageclient for its trace channel.
  trace(v: string): void {
    this.lines.push(v);
  }
  debug(v: string): void {
    this.lines.push(v);
  }
  info(v: string): void {
    this.lines.push(v);
  }
  warn(v: string): void {
    this.lines.push(v);
  }
  error(v: unknown): void {
    this.lines.push(String(v));
  }
  logLevel = 2;
  onDidChangeLogLevel = new EventEmitter<number>().event;
}

function fakeEditor(target: unknown, options: any): any {
  const uri = target instanceof Uri ? target : (target as { uri: Uri }).uri;
  const selection = options?.selection ? new Selection(options.selection.start, options.selection.end) : new Selection(0, 0, 0, 0);
  const editor = {
    document: { uri, getText: () => '' },
    selection,
    viewColumn: options?.viewColumn ?? ViewColumn.One,
    revealed: [] as Range[],
    revealRange(range: Range) {
      editor.revealed.push(range);
    },
  };
  return editor;
}

export const testing = {
  quickPicks: [] as FakeQuickPick<any>[],
  shown: [] as ShowCall[],
  messages: [] as { level: string; message: string; items: string[] }[],
  /** Answer for the next show*Message call(s). */
  messageAnswer: undefined as string | undefined,
  configuration: {} as Record<string, unknown>,
  workspaceFolders: undefined as { uri: Uri; name: string; index: number }[] | undefined,
  outputChannels: [] as FakeOutputChannel[],
  statusBarItems: [] as { text: string; tooltip: unknown; command: unknown }[],
  commands: new Map<string, (...args: any[]) => unknown>(),
  configListeners: new EventEmitter<{ affectsConfiguration(section: string): boolean }>(),
  reset(): void {
    this.quickPicks.length = 0;
    this.shown.length = 0;
    this.messages.length = 0;
    this.messageAnswer = undefined;
    this.configuration = {};
    this.workspaceFolders = undefined;
    this.outputChannels.length = 0;
    this.statusBarItems.length = 0;
    this.commands.clear();
    window.activeTextEditor = undefined;
  },
  lastQuickPick<T extends QuickPickItem>(): FakeQuickPick<T> {
    const qp = this.quickPicks[this.quickPicks.length - 1];
    if (!qp) throw new Error('no QuickPick created');
    return qp as FakeQuickPick<T>;
  },
};

function message(level: string) {
  return (msg: string, ...rest: unknown[]): Promise<string | undefined> => {
    const items = rest.filter((r): r is string => typeof r === 'string');
    testing.messages.push({ level, message: msg, items });
    return Promise.resolve(testing.messageAnswer);
  };
}

export const window = {
  activeTextEditor: undefined as any,
  visibleTextEditors: [] as any[],
  createQuickPick<T extends QuickPickItem>(): FakeQuickPick<T> {
    const qp = new FakeQuickPick<T>();
    testing.quickPicks.push(qp);
    return qp;
  },
  async showTextDocument(target: unknown, options?: any): Promise<any> {
    testing.shown.push({ target, options });
    const editor = fakeEditor(target, options);
    if (!options?.preserveFocus) window.activeTextEditor = editor;
    return editor;
  },
  createStatusBarItem(..._args: unknown[]): any {
    const item = { text: '', tooltip: '', command: undefined, name: '', backgroundColor: undefined, show() {}, hide() {}, dispose() {} };
    testing.statusBarItems.push(item);
    return item;
  },
  createOutputChannel(name: string): FakeOutputChannel {
    const ch = new FakeOutputChannel(name);
    testing.outputChannels.push(ch);
    return ch;
  },
  showInformationMessage: message('info'),
  showWarningMessage: message('warning'),
  showErrorMessage: message('error'),
  async showQuickPick(): Promise<undefined> {
    return undefined;
  },
  async withProgress<R>(_opts: unknown, task: (progress: { report(v: unknown): void }, token: CancellationToken) => Promise<R>): Promise<R> {
    return task({ report() {} }, new CancellationTokenSource().token);
  },
  createWebviewPanel(): never {
    throw new Error('not in the stub');
  },
  onDidChangeActiveTextEditor: new EventEmitter<unknown>().event,
  onDidChangeVisibleTextEditors: new EventEmitter<unknown>().event,
  onDidChangeTextEditorSelection: new EventEmitter<unknown>().event,
  onDidChangeWindowState: new EventEmitter<unknown>().event,
  tabGroups: { all: [], onDidChangeTabs: new EventEmitter<unknown>().event },
};

// ---------- workspace ----------
function configurationFor(section?: string): any {
  const prefix = section ? `${section}.` : '';
  return {
    get<T>(key: string, fallback?: T): T | undefined {
      const full = prefix + key;
      if (full in testing.configuration) return testing.configuration[full] as T;
      // A section read (e.g. "semcode") returns the object of its keys.
      const nested: Record<string, unknown> = {};
      let found = false;
      for (const [k, v] of Object.entries(testing.configuration)) {
        if (k.startsWith(`${full}.`)) {
          nested[k.slice(full.length + 1)] = v;
          found = true;
        }
      }
      return found ? (nested as T) : fallback;
    },
    has(key: string): boolean {
      return prefix + key in testing.configuration;
    },
    inspect(key: string): { key: string; globalValue?: unknown } {
      const full = prefix + key;
      return full in testing.configuration ? { key: full, globalValue: testing.configuration[full] } : { key: full };
    },
    async update(key: string, value: unknown): Promise<void> {
      testing.configuration[prefix + key] = value;
    },
  };
}

const textDocuments: any[] = [];

export const workspace = {
  get workspaceFolders() {
    return testing.workspaceFolders;
  },
  get textDocuments() {
    return textDocuments;
  },
  name: 'stub',
  getConfiguration: configurationFor,
  getWorkspaceFolder(uri: Uri) {
    return testing.workspaceFolders?.find((f) => uri.path.startsWith(f.uri.path));
  },
  onDidChangeConfiguration: testing.configListeners.event,
  onDidOpenTextDocument: new EventEmitter<unknown>().event,
  onDidCloseTextDocument: new EventEmitter<unknown>().event,
  onDidChangeTextDocument: new EventEmitter<unknown>().event,
  onDidSaveTextDocument: new EventEmitter<unknown>().event,
  onWillSaveTextDocument: new EventEmitter<unknown>().event,
  onDidChangeWorkspaceFolders: new EventEmitter<unknown>().event,
  onDidCreateFiles: new EventEmitter<unknown>().event,
  onDidDeleteFiles: new EventEmitter<unknown>().event,
  onDidRenameFiles: new EventEmitter<unknown>().event,
  onWillCreateFiles: new EventEmitter<unknown>().event,
  onWillDeleteFiles: new EventEmitter<unknown>().event,
  onWillRenameFiles: new EventEmitter<unknown>().event,
  onDidOpenNotebookDocument: new EventEmitter<unknown>().event,
  onDidCloseNotebookDocument: new EventEmitter<unknown>().event,
  onDidChangeNotebookDocument: new EventEmitter<unknown>().event,
  onDidSaveNotebookDocument: new EventEmitter<unknown>().event,
  notebookDocuments: [],
  createFileSystemWatcher() {
    const e = new EventEmitter<unknown>();
    return { onDidCreate: e.event, onDidChange: e.event, onDidDelete: e.event, dispose() {} };
  },
  async openTextDocument(): Promise<never> {
    throw new Error('not in the stub');
  },
  fs: {},
};

export const commands = {
  registerCommand(id: string, fn: (...args: any[]) => unknown): Disposable {
    if (testing.commands.has(id)) throw new Error(`command '${id}' already exists`);
    testing.commands.set(id, fn);
    return new Disposable(() => testing.commands.delete(id));
  },
  async executeCommand(id: string, ...args: unknown[]): Promise<unknown> {
    return testing.commands.get(id)?.(...args);
  },
  async getCommands(): Promise<string[]> {
    return [...testing.commands.keys()];
  },
};

export const extensions = {
  getExtension(): undefined {
    return undefined;
  },
  all: [],
  onDidChange: new EventEmitter<unknown>().event,
};

export const env = {
  appName: 'Visual Studio Code (stub)',
  appRoot: '/',
  language: 'en',
  machineId: 'stub',
  sessionId: 'stub',
  uiKind: UIKind.Desktop,
  uriScheme: 'vscode',
  openExternal: async () => true,
};

/** vscode-languageclient registers providers per server capability; accept them all. */
export const languages: any = new Proxy(
  {
    match: () => 10,
    createDiagnosticCollection: () => ({
      set() {},
      delete() {},
      clear() {},
      forEach() {},
      get() {
        return undefined;
      },
      has() {
        return false;
      },
      dispose() {},
    }),
    onDidChangeDiagnostics: new EventEmitter<unknown>().event,
    getLanguages: async () => [],
  },
  {
    get(target: any, prop: string) {
      if (prop in target) return target[prop];
      return () => new Disposable();
    },
  },
);

export const version = '1.82.0';

export const l10n = { t: (message: string) => message };
