// A small fake of the `vscode` module: enough of the API for vscode-languageclient to start a real
// server, register its providers, and for the tests to call those providers as VS Code would.
// Missing members resolve to harmless stubs (recorded in `fake.missing`) so the client's long tail
// of optional features does not need hand-written fakes; everything the tests assert on is real.
'use strict';
const path = require('path');
const { EventEmitter: NodeEmitter } = require('events');

const missing = new Set();

class FakeDisposable {
  constructor(fn) { this._fn = fn; }
  static from(...items) { return new FakeDisposable(() => items.forEach((i) => i && i.dispose && i.dispose())); }
  dispose() { if (this._fn) { const f = this._fn; this._fn = undefined; f(); } }
}

class EventEmitter {
  constructor() { this._e = new NodeEmitter(); this._e.setMaxListeners(0); }
  get event() {
    return (listener, thisArg, disposables) => {
      const l = (...a) => listener.apply(thisArg, a);
      this._e.on('e', l);
      const d = new FakeDisposable(() => this._e.off('e', l));
      if (Array.isArray(disposables)) disposables.push(d);
      return d;
    };
  }
  fire(value) { this._e.emit('e', value); }
  dispose() { this._e.removeAllListeners(); }
}

class CancellationTokenSource {
  constructor() {
    const emitter = new EventEmitter();
    this._emitter = emitter;
    this.token = { isCancellationRequested: false, onCancellationRequested: emitter.event };
  }
  cancel() { if (!this.token.isCancellationRequested) { this.token.isCancellationRequested = true; this._emitter.fire(undefined); } }
  dispose() { this._emitter.dispose(); }
}
class CancellationError extends Error { constructor() { super('Canceled'); this.name = 'Canceled'; } }

class Position {
  constructor(line, character) { this.line = line; this.character = character; }
  isEqual(o) { return this.line === o.line && this.character === o.character; }
  isBefore(o) { return this.line < o.line || (this.line === o.line && this.character < o.character); }
  translate(dl = 0, dc = 0) { return new Position(this.line + dl, this.character + dc); }
  with(line = this.line, character = this.character) { return new Position(line, character); }
}
class Range {
  constructor(a, b, c, d) {
    if (typeof a === 'number') { this.start = new Position(a, b); this.end = new Position(c, d); }
    else { this.start = a; this.end = b; }
  }
  get isEmpty() { return this.start.isEqual(this.end); }
  get isSingleLine() { return this.start.line === this.end.line; }
  contains(p) { return !p.isBefore(this.start) && !this.end.isBefore(p); }
}
class Selection extends Range {}
class Location { constructor(uri, range) { this.uri = uri; this.range = range; } }

class Uri {
  constructor(scheme, fsPath) { this.scheme = scheme; this.fsPath = fsPath; this.path = fsPath; this.authority = ''; this.query = ''; this.fragment = ''; }
  static file(p) { return new Uri('file', path.resolve(p)); }
  static parse(s) {
    const m = /^([a-z][\w+.-]*):(?:\/\/)?(.*)$/i.exec(s);
    if (!m) return new Uri('file', s);
    return new Uri(m[1], m[1] === 'file' ? decodeURIComponent(m[2]) : m[2]);
  }
  static joinPath(u, ...parts) { return new Uri(u.scheme, path.join(u.fsPath, ...parts)); }
  with(change) { return new Uri(change.scheme ?? this.scheme, change.path ?? this.fsPath); }
  toString() { return this.scheme === 'file' ? 'file://' + this.fsPath.split('/').map(encodeURIComponent).join('/') : `${this.scheme}:${this.fsPath}`; }
  toJSON() { return this.toString(); }
}

class TextEdit {
  constructor(range, newText) { this.range = range; this.newText = newText; }
  static replace(r, t) { return new TextEdit(r, t); }
  static insert(p, t) { return new TextEdit(new Range(p, p), t); }
  static delete(r) { return new TextEdit(r, ''); }
}
class SnippetString { constructor(value = '') { this.value = value; } }
class MarkdownString { constructor(value = '') { this.value = value; } appendMarkdown(v) { this.value += v; return this; } appendCodeblock(c) { this.value += '\n```\n' + c + '\n```\n'; return this; } }
class CompletionItem { constructor(label, kind) { this.label = label; this.kind = kind; } }
class CompletionList { constructor(items = [], isIncomplete = false) { this.items = items; this.isIncomplete = isIncomplete; } }
class InlineCompletionItem { constructor(insertText, range, command) { this.insertText = insertText; this.range = range; this.command = command; } }
class InlineCompletionList { constructor(items) { this.items = items; } }
class Diagnostic { constructor(range, message, severity = 0) { this.range = range; this.message = message; this.severity = severity; } }
class DiagnosticRelatedInformation { constructor(location, message) { this.location = location; this.message = message; } }
class CodeActionKind {
  constructor(value) { this.value = value; }
  append(p) { return new CodeActionKind(this.value ? `${this.value}.${p}` : p); }
  contains(o) { return this.value === o.value || o.value.startsWith(this.value + '.'); }
  intersects(o) { return this.contains(o) || o.contains(this); }
}
for (const k of ['Empty:', 'QuickFix:quickfix', 'Refactor:refactor', 'RefactorExtract:refactor.extract', 'RefactorInline:refactor.inline',
  'RefactorRewrite:refactor.rewrite', 'Source:source', 'SourceOrganizeImports:source.organizeImports', 'SourceFixAll:source.fixAll',
  'RefactorMove:refactor.move', 'Notebook:notebook']) {
  const [name, value] = k.split(':');
  CodeActionKind[name] = new CodeActionKind(value);
}
class CodeAction { constructor(title, kind) { this.title = title; this.kind = kind; } }
class WorkspaceEdit {
  constructor() { this._edits = []; }
  replace(uri, range, newText) { this._edits.push({ uri, edit: new TextEdit(range, newText) }); }
  insert(uri, pos, newText) { this.replace(uri, new Range(pos, pos), newText); }
  delete(uri, range) { this.replace(uri, range, ''); }
  set(uri, edits) { for (const e of edits) this._edits.push({ uri, edit: e }); }
  entries() { return this._edits.map((e) => [e.uri, [e.edit]]); }
  get size() { return this._edits.length; }
}
class ThemeColor { constructor(id) { this.id = id; } }
class ThemeIcon { constructor(id) { this.id = id; } }
class RelativePattern { constructor(base, pattern) { this.base = base; this.pattern = pattern; } }

const enums = {
  InlineCompletionTriggerKind: { Invoke: 0, Automatic: 1 },
  CompletionTriggerKind: { Invoke: 0, TriggerCharacter: 1, TriggerForIncompleteCompletions: 2 },
  CompletionItemKind: Object.fromEntries(['Text', 'Method', 'Function', 'Constructor', 'Field', 'Variable', 'Class', 'Interface', 'Module', 'Property', 'Unit', 'Value', 'Enum', 'Keyword', 'Snippet', 'Color', 'File', 'Reference', 'Folder', 'EnumMember', 'Constant', 'Struct', 'Event', 'Operator', 'TypeParameter', 'User', 'Issue'].map((n, i) => [n, i])),
  CompletionItemTag: { Deprecated: 1 },
  DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2, Hint: 3 },
  DiagnosticTag: { Unnecessary: 1, Deprecated: 2 },
  CodeActionTriggerKind: { Invoke: 1, Automatic: 2 },
  SignatureHelpTriggerKind: { Invoke: 1, TriggerCharacter: 2, ContentChange: 3 },
  TextDocumentSaveReason: { Manual: 1, AfterDelay: 2, FocusOut: 3 },
  StatusBarAlignment: { Left: 1, Right: 2 },
  ViewColumn: { Active: -1, Beside: -2, One: 1, Two: 2 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  LogLevel: { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 },
  FileType: { Unknown: 0, File: 1, Directory: 2, SymbolicLink: 64 },
  EndOfLine: { LF: 1, CRLF: 2 },
  ConfigurationTarget: { Global: 1, Workspace: 2, WorkspaceFolder: 3 },
  NotebookCellKind: { Markup: 1, Code: 2 },
  SymbolKind: {}, SymbolTag: { Deprecated: 1 }, DocumentHighlightKind: { Text: 0, Read: 1, Write: 2 },
  FoldingRangeKind: { Comment: 1, Imports: 2, Region: 3 }, InlayHintKind: { Type: 1, Parameter: 2 },
  UIKind: { Desktop: 1, Web: 2 },
};

const STUB_CLASSES = ['CodeLens', 'SymbolInformation', 'DocumentLink', 'InlayHint', 'InlayHintLabelPart',
  'TypeHierarchyItem', 'CallHierarchyItem', 'CallHierarchyIncomingCall', 'CallHierarchyOutgoingCall', 'DocumentSymbol',
  'DocumentHighlight', 'Hover', 'SignatureHelp', 'SignatureInformation', 'ParameterInformation', 'FoldingRange',
  'SelectionRange', 'Color', 'ColorInformation', 'ColorPresentation', 'SemanticTokens', 'SemanticTokensEdit',
  'SemanticTokensEdits', 'SemanticTokensLegend', 'LinkedEditingRanges', 'InlineValueText', 'InlineValueVariableLookup',
  'InlineValueEvaluatableExpression', 'TabInputText', 'TabInputTextDiff', 'TabInputNotebook', 'TabInputCustom',
  'SnippetTextEdit', 'NotebookCellData', 'NotebookData', 'NotebookRange', 'DocumentDropEdit', 'TextDocumentChangeReason'];

/** A TextDocument over a string; `setText` for edits (the tests fire change events themselves). */
class FakeTextDocument {
  constructor(uri, languageId, text, version = 1) {
    this.uri = uri; this.languageId = languageId; this.version = version; this._text = text;
    this.isClosed = false; this.isDirty = false; this.isUntitled = uri.scheme === 'untitled'; this.eol = 1; this.encoding = 'utf8';
  }
  get fileName() { return this.uri.fsPath; }
  get _lines() { return this._text.split('\n'); }
  get lineCount() { return this._lines.length; }
  getText(range) {
    if (!range) return this._text;
    return this._text.slice(this.offsetAt(range.start), this.offsetAt(range.end));
  }
  offsetAt(p) {
    const lines = this._lines; let off = 0;
    for (let i = 0; i < Math.min(p.line, lines.length); i++) off += lines[i].length + 1;
    return off + Math.min(p.character, (lines[p.line] ?? '').length);
  }
  positionAt(offset) {
    const before = this._text.slice(0, offset).split('\n');
    return new Position(before.length - 1, before[before.length - 1].length);
  }
  lineAt(l) {
    const line = typeof l === 'number' ? l : l.line; const text = this._lines[line] ?? '';
    return { lineNumber: line, text, range: new Range(line, 0, line, text.length), isEmptyOrWhitespace: text.trim() === '' };
  }
  getWordRangeAtPosition(p) {
    const text = this.lineAt(p.line).text; let s = p.character; let e = p.character;
    while (s > 0 && /\w/.test(text[s - 1])) s--;
    while (e < text.length && /\w/.test(text[e])) e++;
    return s === e ? undefined : new Range(p.line, s, p.line, e);
  }
  validatePosition(p) { return p; }
  validateRange(r) { return r; }
  save() { return Promise.resolve(true); }
}

/** Returns a namespace object: explicit members first, then stubs for the rest. */
function namespace(name, members, registry) {
  return new Proxy(members, {
    get(target, prop) {
      if (prop in target || typeof prop === 'symbol') return target[prop];
      const p = String(prop);
      if (p.startsWith('onDid') || p.startsWith('onWill')) return () => new FakeDisposable();
      if (p.startsWith('register')) {
        return (...args) => { registry.push({ kind: p, args }); return new FakeDisposable(); };
      }
      missing.add(`${name}.${p}`);
      return undefined;
    },
  });
}

function createFake(options = {}) {
  const config = { ...(options.config || {}) };
  const registrations = [];
  const commands = new Map();
  const messages = [];
  const statusBarItems = [];
  const outputLines = [];
  const configEmitter = new EventEmitter();
  const openEmitter = new EventEmitter();
  const changeEmitter = new EventEmitter();
  const closeEmitter = new EventEmitter();
  const textDocuments = [];
  const diagnostics = new Map();

  function configuration(section) {
    const prefix = section ? section + '.' : '';
    return {
      get(key, dflt) {
        const full = prefix + key;
        if (full in config) return config[full];
        // Nested read: get('model') -> {path, variant, threads}
        const nested = {}; let found = false;
        for (const k of Object.keys(config)) {
          if (k.startsWith(full + '.')) { found = true; setPath(nested, k.slice(full.length + 1), config[k]); }
        }
        if (found) return nested;
        if (options.packageJson) {
          const prop = options.packageJson.contributes.configuration.properties[full];
          if (prop && 'default' in prop) return prop.default;
        }
        return dflt;
      },
      has(key) { return (prefix + key) in config; },
      inspect(key) { return { key: prefix + key, globalValue: config[prefix + key] }; },
      // Like VS Code, saving a setting fires onDidChangeConfiguration.
      update(key, value) { fake.changeConfiguration({ [prefix + key]: value }); return Promise.resolve(); },
    };
  }
  function setPath(obj, dotted, value) {
    const parts = dotted.split('.'); let node = obj;
    for (const p of parts.slice(0, -1)) node = node[p] ??= {};
    node[parts[parts.length - 1]] = value;
  }

  function logChannel(name) {
    const ch = { name, logLevel: 3, onDidChangeLogLevel: () => new FakeDisposable(), shown: 0 };
    for (const m of ['append', 'appendLine', 'replace', 'trace', 'debug', 'info', 'warn', 'error']) {
      ch[m] = (...a) => outputLines.push(`[${m}] ${a.map((x) => (x instanceof Error ? x.message : String(x))).join(' ')}`);
    }
    ch.clear = () => undefined; ch.show = () => { ch.shown++; }; ch.hide = () => undefined; ch.dispose = () => undefined;
    return ch;
  }

  // Tests script the user's answers: fake.answer(level, message, items) -> the chosen item;
  // fake.openDialogResult(options) -> the Uri[] an open dialog returns.
  const showMessage = (level) => (message, ...items) => {
    const choices = items.filter((i) => typeof i === 'string' || (i && i.title));
    messages.push({ level, message, items: choices });
    return Promise.resolve(fake.answer(level, message, choices));
  };
  const contentProviders = new Map();
  const terminals = [];
  const shownDocuments = [];

  const vscode = {
    version: '1.91.0',
    Disposable: FakeDisposable, EventEmitter, CancellationTokenSource, CancellationError, Position, Range, Selection, Location, Uri,
    TextEdit, SnippetString, MarkdownString, CompletionItem, CompletionList, InlineCompletionItem, InlineCompletionList,
    Diagnostic, DiagnosticRelatedInformation, CodeActionKind, CodeAction, WorkspaceEdit, ThemeColor, ThemeIcon, RelativePattern,
    ...enums,
    env: { appName: 'Fake VS Code', language: 'en', machineId: 'fake', sessionId: 'fake', uiKind: 1, openExternal: () => Promise.resolve(true), clipboard: { writeText: () => Promise.resolve() } },
    l10n: { t: (m, ...args) => (typeof m === 'string' ? m.replace(/\{(\d+)\}/g, (_, i) => String(args[i])) : m.message) },
    commands: namespace('commands', {
      registerCommand(id, fn) {
        if (commands.has(id)) throw new Error(`command '${id}' already exists`);
        commands.set(id, fn);
        return new FakeDisposable(() => commands.delete(id));
      },
      executeCommand(id, ...args) {
        const fn = commands.get(id);
        return fn ? Promise.resolve(fn(...args)) : Promise.resolve(undefined);
      },
      getCommands: () => Promise.resolve([...commands.keys()]),
    }, registrations),
    window: namespace('window', {
      activeTextEditor: undefined,
      visibleTextEditors: [],
      tabGroups: { all: [], onDidChangeTabs: () => new FakeDisposable(), onDidChangeTabGroups: () => new FakeDisposable() },
      createOutputChannel: (name) => logChannel(name),
      createStatusBarItem(id, alignment, priority) {
        const item = { id, alignment, priority, text: '', tooltip: '', shown: false, show() { this.shown = true; }, hide() { this.shown = false; }, dispose() { this.shown = false; } };
        statusBarItems.push(item);
        return item;
      },
      showErrorMessage: showMessage('error'),
      showWarningMessage: showMessage('warning'),
      showInformationMessage: showMessage('info'),
      showQuickPick: (items) => { messages.push({ level: 'quickpick', items }); return Promise.resolve(undefined); },
      withProgress: (_o, task) => task({ report: () => undefined }, new CancellationTokenSource().token),
      showOpenDialog: (o) => { messages.push({ level: 'openDialog', options: o }); return Promise.resolve(fake.openDialogResult(o)); },
      createTerminal(o) {
        const terminal = { name: o && o.name, sent: [], shown: false, sendText(t) { this.sent.push(t); }, show() { this.shown = true; }, dispose() {} };
        terminals.push(terminal);
        return terminal;
      },
      showTextDocument: (doc, o) => { shownDocuments.push({ doc, options: o }); return Promise.resolve({ document: doc }); },
    }, registrations),
    workspace: namespace('workspace', {
      workspaceFolders: options.workspaceFolders,
      isTrusted: options.isTrusted ?? true,
      textDocuments,
      notebookDocuments: [],
      getConfiguration: (section) => configuration(section),
      onDidChangeConfiguration: configEmitter.event,
      onDidOpenTextDocument: openEmitter.event,
      onDidChangeTextDocument: changeEmitter.event,
      onDidCloseTextDocument: closeEmitter.event,
      createFileSystemWatcher: () => ({ onDidCreate: () => new FakeDisposable(), onDidChange: () => new FakeDisposable(), onDidDelete: () => new FakeDisposable(), dispose() {} }),
      applyEdit: () => Promise.resolve(true),
      getWorkspaceFolder: () => undefined,
      registerTextDocumentContentProvider(scheme, provider) {
        contentProviders.set(scheme, provider);
        return new FakeDisposable(() => contentProviders.delete(scheme));
      },
      /** Virtual documents (a registered scheme) come from their provider, read-only as in VS Code. */
      async openTextDocument(uri) {
        const provider = contentProviders.get(uri.scheme);
        if (!provider) throw new Error(`fake openTextDocument: no provider for ${uri.toString()}`);
        const doc = new FakeTextDocument(uri, 'plaintext', await provider.provideTextDocumentContent(uri, fake.token()));
        doc.readOnly = true;
        return doc;
      },
      fs: { stat: () => Promise.reject(new Error('no fs')) },
    }, registrations),
    languages: namespace('languages', {
      match(selector, doc) {
        const sels = Array.isArray(selector) ? selector : [selector];
        let score = 0;
        for (const s of sels) {
          if (typeof s === 'string') { if (s === doc.languageId) score = Math.max(score, 10); continue; }
          if (s.language && s.language !== doc.languageId && s.language !== '*') continue;
          if (s.scheme && s.scheme !== doc.uri.scheme && s.scheme !== '*') continue;
          score = Math.max(score, s.language === '*' || !s.language ? 5 : 10);
        }
        return score;
      },
      createDiagnosticCollection(name) {
        return {
          name,
          set(uri, diags) { if (Array.isArray(uri)) { for (const [u, d] of uri) diagnostics.set(u.toString(), d || []); } else diagnostics.set(uri.toString(), diags || []); },
          delete(uri) { diagnostics.delete(uri.toString()); },
          get(uri) { return diagnostics.get(uri.toString()); },
          clear() { diagnostics.clear(); }, forEach(cb) { diagnostics.forEach((d, u) => cb(Uri.parse(u), d)); }, dispose() {},
          has(uri) { return diagnostics.has(uri.toString()); },
        };
      },
      getDiagnostics: (uri) => (uri ? diagnostics.get(uri.toString()) || [] : [...diagnostics.entries()]),
    }, registrations),
    extensions: namespace('extensions', { all: [], getExtension: () => undefined }, registrations),
    notebooks: namespace('notebooks', {}, registrations),
    debug: namespace('debug', {}, registrations),
    tasks: namespace('tasks', {}, registrations),
  };

  // vscode-languageclient imports `vscode` through TypeScript's __importStar, which copies own
  // properties: every class it names (some it extends) must exist up front.
  for (const name of STUB_CLASSES) {
    if (!(name in vscode)) vscode[name] = { [name]: class { constructor(...args) { this.args = args; } } }[name];
  }

  const root = new Proxy(vscode, {
    get(target, prop) {
      if (prop in target || typeof prop === 'symbol') return target[prop];
      const p = String(prop);
      missing.add(p);
      if (/^[A-Z]/.test(p)) {
        // An unknown class or enum: a class with no statics.
        const Stub = { [p]: class { constructor(...args) { this.args = args; } } }[p];
        target[p] = Stub;
        return Stub;
      }
      return undefined;
    },
  });

  const fake = {
    vscode: root,
    config, registrations, commands, messages, statusBarItems, outputLines, textDocuments, diagnostics, missing,
    contentProviders, terminals, shownDocuments,
    answer: options.answer || (() => undefined),
    openDialogResult: options.openDialogResult || (() => undefined),
    /** Open a document: add it to workspace.textDocuments and fire onDidOpenTextDocument. */
    openDocument(fsPath, languageId, text) {
      const doc = new FakeTextDocument(Uri.file(fsPath), languageId, text);
      textDocuments.push(doc);
      openEmitter.fire(doc);
      return doc;
    },
    changeConfiguration(changes) {
      Object.assign(config, changes);
      const keys = Object.keys(changes);
      configEmitter.fire({ affectsConfiguration: (section) => keys.some((k) => k === section || k.startsWith(section + '.')) });
    },
    providers(kind) { return registrations.filter((r) => r.kind === kind).map((r) => r.args); },
    token() { return new CancellationTokenSource().token; },
  };
  return fake;
}

/** Make `require('vscode')` return `fake.vscode` (for the code under test and vscode-languageclient). */
function installFake(fake) {
  const Module = require('module');
  const original = Module._load;
  Module._load = function (request, parent, isMain) {
    if (request === 'vscode') return fake.vscode;
    return original.call(this, request, parent, isMain);
  };
  return () => { Module._load = original; };
}

module.exports = { createFake, installFake, FakeTextDocument };
