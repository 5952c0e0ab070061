// Runs the compiled extension's activate() against a fake `vscode` module and the real gpt-lsp
// server: the providers vscode-languageclient registers are called exactly as VS Code would call them.
// Needs: npm run compile; GPT_LSP_SERVER (absolute path of gpt-lsp), GPT_LSP_MODEL (a model directory).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { createFake, installFake } = require('./fake-vscode');
const { CANDIDATES, endPosition, waitReady } = require('./lspClient');

const root = path.resolve(__dirname, '..');
const packageJson = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const server = process.env.GPT_LSP_SERVER;
const model = process.env.GPT_LSP_MODEL;
const skip = !server || !model ? 'set GPT_LSP_SERVER and GPT_LSP_MODEL (tests/editors/test_vscode.py does)' : false;

/** Fail fast (instead of hanging until the test timeout) when the server never answers. */
function withTimeout(promise, what, ms = 20000) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  })]).finally(() => clearTimeout(timer));
}

async function until(what, fn, timeoutMs = 30000) {
  const start = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const LOCATE = 'Locate gpt-lsp…';

test('activate() against the real server', { skip, timeout: 120000 }, async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt-lsp-vscode-'));
  // The first-run prompt waits for the user; the test answers "Locate gpt-lsp…" when it is ready.
  let answerPrompt;
  const userAnswer = new Promise((resolve) => { answerPrompt = resolve; });
  const fake = createFake({
    packageJson,
    config: {
      'gptLsp.server.path': path.join(tmp, 'no-such-gpt-lsp'),
      'gptLsp.server.args': ['--model', model],
      'gptLsp.generation.timeoutMs': 5000,
      'gptLsp.languages': { go: false },
    },
    workspaceFolders: [{ uri: { scheme: 'file', fsPath: tmp, toString: () => 'file://' + tmp }, name: 'ws', index: 0 }],
    answer: (level, message, items) => (level === 'error' && items.includes(LOCATE) ? userAnswer : undefined),
  });
  fake.openDialogResult = (o) => (o.canSelectFiles ? [fake.vscode.Uri.file(server)] : undefined);
  const restore = installFake(fake);
  t.after(restore);
  // GPT_LSP_EXTENSION=dist/extension.js tests the esbuild bundle that goes into the .vsix.
  const ext = require(path.resolve(root, process.env.GPT_LSP_EXTENSION || 'out/extension.js'));
  const context = { subscriptions: [], extension: { packageJSON: packageJson }, extensionPath: root };
  const api = await ext.activate(context);

  await t.test('contributes and registers the commands', () => {
    const contributed = packageJson.contributes.commands.map((c) => c.command).sort();
    for (const id of contributed) assert.ok(fake.commands.has(id), `command ${id} not registered`);
  });

  await t.test('a missing server gives a first-run prompt with the fix', async () => {
    await api.started;
    const err = fake.messages.find((m) => m.level === 'error');
    assert.ok(err, `no error notification; messages: ${JSON.stringify(fake.messages)}`);
    assert.match(err.message, /gptLsp\.server\.path/);
    assert.match(err.message, /not published on PyPI yet/);
    assert.match(err.message, /pipx install \/path\/to\/gpt-lsp/);
    assert.deepEqual(err.items, ['Install with pipx…', LOCATE, 'Open Settings']);
    assert.equal(api.statusBar.state, 'missing');
    assert.match(fake.statusBarItems[0].text, /warning/);
    assert.equal(api.client, undefined);
  });

  await t.test('"Locate gpt-lsp…" saves gptLsp.server.path and starts the server', async () => {
    answerPrompt(LOCATE);
    await until('client running', () => api.client && api.client.isRunning());
    const dialog = fake.messages.find((m) => m.level === 'openDialog');
    assert.equal(dialog.options.canSelectFiles, true);
    assert.equal(fake.config['gptLsp.server.path'], server);
    const caps = api.client.initializeResult.capabilities;
    assert.ok(caps.inlineCompletionProvider, 'server did not announce inlineCompletionProvider');
    assert.ok(caps.completionProvider, 'server did not announce completionProvider');
    // The extension's settings object (from package.json) must be accepted by the server as is.
    const warning = fake.messages.find((m) => /invalid settings/i.test(m.message || ''));
    assert.equal(warning, undefined, `server rejected the extension's settings: ${warning && warning.message}`);
  });

  let doc;
  let pos;

  await t.test('the inline completion provider answers with ghost text (triggerKind sent)', async () => {
    await waitReady((method, params) => api.client.sendRequest(method, params));
    const inline = fake.providers('registerInlineCompletionItemProvider');
    assert.equal(inline.length, 1, 'expected one inline completion provider');
    const [selector, provider] = inline[0];
    let items;
    const tried = [];
    for (const [i, c] of CANDIDATES.entries()) {
      doc = fake.openDocument(path.join(tmp, `example${i}.${c.ext}`), c.languageId, c.text);
      if (c.languageId === 'go') {  // gptLsp.languages turned Go off
        assert.equal(fake.vscode.languages.match(selector, doc), 0, 'go is off but the selector matches it');
        continue;
      }
      assert.ok(fake.vscode.languages.match(selector, doc) > 0, `${c.languageId} document not matched by the selector`);
      const end = endPosition(c.text);
      pos = new fake.vscode.Position(end.line, end.character);
      const result = await withTimeout(provider.provideInlineCompletionItems(doc, pos,
        { triggerKind: fake.vscode.InlineCompletionTriggerKind.Automatic, selectedCompletionInfo: undefined }, fake.token()),
      'textDocument/inlineCompletion');
      items = Array.isArray(result) ? result : result && result.items;
      tried.push(`${JSON.stringify(c.text)}: ${JSON.stringify(result)}`);
      if (items && items.length > 0) break;
    }
    assert.ok(items && items.length > 0, `no inline items:\n${tried.join('\n')}\nlog: ${fake.outputLines.slice(-5).join('\n')}`);
    const item = items[0];
    assert.ok(item instanceof fake.vscode.InlineCompletionItem);
    assert.equal(typeof item.insertText, 'string');
    assert.ok(item.insertText.length > 0);
    if (process.env.GPT_LSP_EXPECT && doc.uri.fsPath.endsWith('example0.py')) assert.equal(item.insertText, process.env.GPT_LSP_EXPECT);
    assert.ok(item.range instanceof fake.vscode.Range);
    assert.equal(item.range.end.line, pos.line);
    assert.equal(item.range.end.character, pos.character);
  });

  await t.test('"Show how this was made" opens the --explain report read-only', async () => {
    fake.vscode.window.activeTextEditor = { document: doc, selection: { active: pos } };
    const uri = await fake.commands.get('gptLsp.explain')();
    assert.ok(uri, `no report; messages: ${JSON.stringify(fake.messages.slice(-3))}`);
    assert.equal(uri.scheme, 'gpt-lsp-explain');
    const shown = fake.shownDocuments[fake.shownDocuments.length - 1].doc;
    assert.equal(shown.readOnly, true);
    const text = shown.getText();
    assert.ok(text.startsWith(`How gpt-lsp completes ${doc.uri.fsPath}:${pos.line + 1}:${pos.character + 1}`), text.slice(0, 200));
    assert.match(text, /context: (line|block)/);
    assert.match(text, /=== prompt: \d+ tokens/);
    assert.match(text, /=== decoded tokens \(\d+\): probability/);
    if (process.env.GPT_LSP_EXPECT && doc.uri.fsPath.endsWith('example0.py')) {
      assert.ok(text.includes(`---\n${process.env.GPT_LSP_EXPECT}`) || text.includes(process.env.GPT_LSP_EXPECT), text);
    }
  });

  await t.test('the completion provider answers with list items that carry a text edit', async () => {
    const providers = fake.providers('registerCompletionItemProvider');
    assert.ok(providers.length >= 1, 'no completion provider registered');
    const [, provider] = providers[0];
    const result = await provider.provideCompletionItems(doc, pos, fake.token(),
      { triggerKind: fake.vscode.CompletionTriggerKind.Invoke, triggerCharacter: undefined });
    const items = Array.isArray(result) ? result : result.items;
    assert.ok(items.length > 0, 'no completion items');
    assert.ok(items[0] instanceof fake.vscode.CompletionItem);
    assert.ok(items[0].textEdit || items[0].range, 'completion item without an edit range');
  });

  await t.test('toggle goes through the server and the status bar follows gpt-lsp/status', async () => {
    const off = await fake.commands.get('gptLsp.toggle')();
    assert.equal(off, false);
    await until('status bar disabled', () => api.statusBar.state === 'disabled');
    assert.match(fake.statusBarItems[0].text, /circle-slash/);
    const inline = fake.providers('registerInlineCompletionItemProvider')[0][1];
    const result = await inline.provideInlineCompletionItems(doc, pos,
      { triggerKind: fake.vscode.InlineCompletionTriggerKind.Invoke }, fake.token());
    const items = Array.isArray(result) ? result : (result && result.items) || [];
    assert.equal(items.length, 0, 'disabled server still produced inline items');
    const on = await fake.commands.get('gptLsp.toggle')();
    assert.equal(on, true);
    await until('status bar ready', () => api.statusBar.state === 'ready');
  });

  await t.test('showStatus shows the server state', async () => {
    await fake.commands.get('gptLsp.showStatus')();
    const pick = fake.messages.filter((m) => m.level === 'quickpick').pop();
    const labels = pick.items.map((i) => i.label).join('\n');
    assert.match(labels, /state: \w+/);
    assert.ok(labels.includes(path.basename(model)), `model path not in status: ${labels}`);
  });

  await t.test('settings changes reach the server (completion.enable=false empties the list)', async () => {
    fake.changeConfiguration({ 'gptLsp.completion.enable': false });
    const [, provider] = fake.providers('registerCompletionItemProvider')[0];
    await until('completion disabled', async () => {
      const r = await provider.provideCompletionItems(doc, pos, fake.token(),
        { triggerKind: fake.vscode.CompletionTriggerKind.Invoke });
      return (Array.isArray(r) ? r : r.items).length === 0;
    }, 15000);
    fake.changeConfiguration({ 'gptLsp.completion.enable': true });
  });

  await t.test('turning a language on in gptLsp.languages restarts with it in the selector', async () => {
    const before = api.client;
    const go = fake.openDocument(path.join(tmp, 'main.go'), 'go', 'package main\n');
    fake.changeConfiguration({ 'gptLsp.languages': { go: true } });
    await until('restarted client', () => api.client && api.client !== before && api.client.isRunning());
    const inline = fake.providers('registerInlineCompletionItemProvider');
    const [selector] = inline[inline.length - 1];
    assert.ok(fake.vscode.languages.match(selector, go) > 0, 'go not matched after enabling it');
  });

  await t.test('deactivate() shuts the server down', async () => {
    const proc = api.client._serverProcess;
    const exited = new Promise((r) => (proc.exitCode !== null ? r(proc.exitCode) : proc.on('exit', (code) => r(code))));
    await ext.deactivate();
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 10000).unref())]);
    assert.equal(code, 0, 'server did not exit cleanly after shutdown/exit');
  });
});
