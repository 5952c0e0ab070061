// The server as the VS Code client sees it, over stdio with vscode-languageserver-protocol:
// initialize (with the extension's own settings object), didOpen, completion, inlineCompletion
// with a triggerKind, executeCommand, didChangeConfiguration, shutdown/exit.
// Needs GPT_LSP_MODEL (a model directory); GPT_LSP_SERVER defaults to `gpt-lsp` on PATH.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { startServer, CLIENT_CAPABILITIES, CANDIDATES, endPosition, waitReady } = require('./lspClient');
const { buildServerSettings, serverSettingKeys } = require('../out/settings');

const packageJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
const model = process.env.GPT_LSP_MODEL;
const skip = model ? false : 'set GPT_LSP_MODEL to a model directory (tests/editors/test_vscode.py does)';

/** The settings object the extension sends when every setting has its package.json default. */
function defaultSettings() {
  const props = packageJson.contributes.configuration.properties;
  return buildServerSettings(serverSettingKeys(packageJson), (k) => props['gptLsp.' + k].default);
}

test('protocol round trip against the real server', { skip, timeout: 120000 }, async (t) => {
  const s = startServer();
  t.after(() => { if (s.proc.exitCode === null) s.proc.kill('SIGKILL'); });
  let uri;
  let pos;

  await t.test('initialize accepts the extension settings and announces the features', async () => {
    const settings = defaultSettings();
    assert.equal(settings.model.path, null);
    settings.generation.timeoutMs = 5000;
    const init = await s.request('initialize', {
      processId: process.pid, rootUri: 'file:///tmp/gpt-lsp-protocol-test', capabilities: CLIENT_CAPABILITIES,
      initializationOptions: settings, clientInfo: { name: 'node-test' },
    });
    const caps = init.capabilities;
    assert.ok(caps.inlineCompletionProvider, 'no inlineCompletionProvider');
    assert.ok(caps.completionProvider, 'no completionProvider');
    assert.ok(caps.executeCommandProvider, 'no executeCommandProvider');
    for (const cmd of ['gpt-lsp.status', 'gpt-lsp.toggle']) {
      assert.ok(caps.executeCommandProvider.commands.includes(cmd), `command ${cmd} not announced`);
    }
    s.connection.sendNotification('initialized', {});
    // Give a settings complaint (window/showMessage) the chance to arrive before checking.
    await waitReady(s.request);
    const complaint = s.notifications.find((n) => n.method === 'window/showMessage' && /invalid settings/i.test(n.params.message));
    assert.equal(complaint, undefined, complaint && complaint.params.message);
  });

  await t.test('textDocument/completion returns list items with textEdit and filterText', async () => {
    let list;
    const tried = [];
    for (const [i, c] of CANDIDATES.entries()) {
      uri = `file:///tmp/gpt-lsp-protocol-test/example${i}.${c.ext}`;
      pos = endPosition(c.text);
      s.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: c.languageId, version: 1, text: c.text } });
      list = await s.request('textDocument/completion', { textDocument: { uri }, position: pos });
      const status = await s.request('workspace/executeCommand', { command: 'gpt-lsp.status', arguments: [] });
      tried.push(`${JSON.stringify(c.text)}: ${list.items.length} items (${status.reason})`);
      if (list.items.length > 0) break;
    }
    assert.equal(typeof list.isIncomplete, 'boolean');
    assert.ok(list.items.length > 0, `no completion items for any candidate:\n${tried.join('\n')}`);
    const item = list.items[0];
    assert.ok(item.textEdit, 'item without textEdit');
    const range = item.textEdit.range || item.textEdit.replace;
    assert.equal(range.start.line, pos.line);
    assert.equal(typeof item.textEdit.newText, 'string');
    assert.equal(typeof item.filterText, 'string');
  });

  await t.test('textDocument/inlineCompletion with triggerKind returns ghost text at the cursor', async () => {
    for (const triggerKind of [1, 2]) { // Invoked, Automatic
      const r = await s.request('textDocument/inlineCompletion', { textDocument: { uri }, position: pos, context: { triggerKind } });
      const items = Array.isArray(r) ? r : r && r.items;
      assert.ok(items && items.length > 0, `no inline items for triggerKind ${triggerKind}`);
      const item = items[0];
      assert.equal(typeof item.insertText, 'string');
      assert.ok(item.insertText.length > 0);
      assert.deepEqual(item.range.end, pos);
      // With the fixed test model every suggestion is exactly $GPT_LSP_EXPECT.
      if (process.env.GPT_LSP_EXPECT && uri.endsWith('example0.py')) assert.equal(item.insertText, process.env.GPT_LSP_EXPECT);
    }
  });

  await t.test('status and toggle commands round-trip, with gpt-lsp/status notifications', async () => {
    const status = await s.request('workspace/executeCommand', { command: 'gpt-lsp.status', arguments: [] });
    assert.equal(typeof status.state, 'string');
    assert.ok(String(status.model).includes(path.basename(model)), `status.model = ${status.model}`);
    assert.equal(await s.request('workspace/executeCommand', { command: 'gpt-lsp.toggle', arguments: [] }), false);
    const disabled = await s.waitFor('gpt-lsp/status', (p) => p.state === 'disabled');
    assert.equal(typeof disabled.reason, 'string');
    const list = await s.request('textDocument/completion', { textDocument: { uri }, position: pos });
    assert.equal(list.items.length, 0, 'toggled-off server still completes');
    assert.equal(await s.request('workspace/executeCommand', { command: 'gpt-lsp.toggle', arguments: [] }), true);
  });

  await t.test('didChangeConfiguration {settings: {gptLsp}} is applied', async () => {
    const settings = defaultSettings();
    settings.inlineCompletion.enable = false;
    s.connection.sendNotification('workspace/didChangeConfiguration', { settings: { gptLsp: settings } });
    const r = await s.request('textDocument/inlineCompletion', { textDocument: { uri }, position: pos, context: { triggerKind: 1 } });
    const items = Array.isArray(r) ? r : (r && r.items) || [];
    assert.equal(items.length, 0, 'inlineCompletion.enable=false still answers');
    s.connection.sendNotification('workspace/didChangeConfiguration', { settings: { gptLsp: defaultSettings() } });
  });

  await t.test('shutdown then exit ends the process with code 0', async () => {
    assert.equal(await s.request('shutdown', null), null);
    s.connection.sendNotification('exit');
    const { code } = await s.exited;
    assert.equal(code, 0);
  });
});
