// gptLsp.languages and the first-run prompt, without a server: the compiled code against the fake
// `vscode` module and the real package.json. Needs: npm run compile.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { createFake, installFake } = require('./fake-vscode');

const root = path.resolve(__dirname, '..');
const repo = path.resolve(root, '..', '..');
const packageJson = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const out = process.env.GPT_LSP_OUT_DIR || 'out';
const { DEFAULT_LANGUAGES, enabledLanguages } = require(path.join(root, out, 'languages.js'));
const { completeTarget, cliCommand } = require(path.join(root, out, 'serverCommand.js'));

test('gptLsp.languages: contributed default, activation events and the code agree', () => {
  const setting = packageJson.contributes.configuration.properties['gptLsp.languages'];
  assert.equal(setting.type, 'object');
  assert.deepEqual(setting.additionalProperties, { type: 'boolean' });
  assert.deepEqual(Object.keys(setting.default), DEFAULT_LANGUAGES);
  assert.ok(Object.values(setting.default).every((on) => on === true));
  const activation = packageJson.activationEvents.filter((e) => e.startsWith('onLanguage:')).map((e) => e.slice(11));
  assert.deepEqual(activation, DEFAULT_LANGUAGES);
});

test('enabledLanguages: per-language off, extra languages on, bad values ignored', () => {
  assert.deepEqual(enabledLanguages(undefined), DEFAULT_LANGUAGES);
  assert.deepEqual(enabledLanguages({ go: false, rust: false }), DEFAULT_LANGUAGES.filter((l) => l !== 'go' && l !== 'rust'));
  assert.deepEqual(enabledLanguages({ lua: true, shellscript: false }), [...DEFAULT_LANGUAGES, 'lua']);
  assert.deepEqual(enabledLanguages(['python']), DEFAULT_LANGUAGES);
  assert.deepEqual(enabledLanguages({ python: 'no' }), DEFAULT_LANGUAGES);
});

test('the explain command line: same launcher, `complete`, 1-based character column', () => {
  const viaPython = { command: '/py', args: ['-c', 'boot', '--stdio', '--model', 'm'], source: 'gptLsp.server.pythonPath' };
  assert.deepEqual(cliCommand(viaPython, ['complete', 'a.py:1:1']), { command: '/py', args: ['-c', 'boot', 'complete', 'a.py:1:1'] });
  // "😀" is two UTF-16 units in VS Code's position but one character for the CLI.
  assert.equal(completeTarget('/t/a.py', 4, 's = "😀x', 8), '/t/a.py:5:8');
});

async function firstRun(t, answer, dialog) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt-lsp-first-run-'));
  const fake = createFake({
    packageJson,
    config: { 'gptLsp.server.path': path.join(tmp, 'no-such-gpt-lsp') },
    answer: (level, message, items) => (level === 'error' && items.includes(answer) ? answer : undefined),
    openDialogResult: dialog,
  });
  const restore = installFake(fake);
  t.after(restore);
  // A fresh copy of the extension per test, so it binds to this test's fake `vscode`.
  const entry = path.resolve(root, process.env.GPT_LSP_EXTENSION || 'out/extension.js');
  for (const key of Object.keys(require.cache)) {
    if (key.startsWith(path.dirname(entry) + path.sep)) delete require.cache[key];
  }
  const ext = require(entry);
  const api = await ext.activate({ subscriptions: [], extension: { packageJSON: packageJson }, extensionPath: root });
  await api.started;
  for (let i = 0; i < 50 && fake.messages.filter((m) => m.level !== 'error').length === 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await ext.deactivate();
  return fake;
}

test('first run: "Install with pipx…" runs pipx on the chosen checkout in a terminal', async (t) => {
  const fake = await firstRun(t, 'Install with pipx…', (o) => (o.canSelectFolders ? [{ fsPath: repo }] : undefined));
  assert.equal(fake.terminals.length, 1);
  assert.deepEqual(fake.terminals[0].sent, [`pipx install ${JSON.stringify(repo)}`]);
  assert.equal(fake.terminals[0].shown, true);
  assert.ok(fake.messages.some((m) => m.level === 'info' && m.items.includes('Restart Server')));
});

test('first run: a folder that is not a gpt-lsp checkout is refused', async (t) => {
  const fake = await firstRun(t, 'Install with pipx…', () => [{ fsPath: os.tmpdir() }]);
  assert.equal(fake.terminals.length, 0);
  assert.ok(fake.messages.some((m) => m.level === 'error' && /is not a gpt-lsp checkout/.test(m.message)));
});
