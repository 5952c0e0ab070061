// A minimal LSP client over stdio for the tests: spawns the real gpt-lsp server and talks to it
// through vscode-languageserver-protocol/node (the library vscode-languageclient is built on).
'use strict';
const cp = require('child_process');
const path = require('path');
const rpc = require('vscode-languageserver-protocol/node');

/** How to start the server in tests: $GPT_LSP_SERVER (default `gpt-lsp` on PATH) + `--model $GPT_LSP_MODEL`. */
function serverCommand() {
  const command = process.env.GPT_LSP_SERVER || 'gpt-lsp';
  const args = ['--stdio'];
  if (process.env.GPT_LSP_MODEL) args.push('--model', process.env.GPT_LSP_MODEL);
  if (process.env.GPT_LSP_LOG) args.push('--log-file', process.env.GPT_LSP_LOG, '-vv');
  return { command, args };
}

function startServer() {
  const { command, args } = serverCommand();
  const proc = cp.spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d.toString(); });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const connection = rpc.createMessageConnection(
    new rpc.StreamMessageReader(proc.stdout), new rpc.StreamMessageWriter(proc.stdin));
  const notifications = [];
  const waiters = [];
  connection.onNotification((method, params) => {
    notifications.push({ method, params });
    for (const w of waiters.slice()) {
      if (w.match(method, params)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(params); }
    }
  });
  connection.onRequest((method, params) => {
    // Answer what a real client would; workspace/configuration gets nulls (we push settings instead).
    if (method === 'workspace/configuration') return params.items.map(() => null);
    return null;
  });
  connection.listen();
  function waitFor(method, pred = () => true, timeoutMs = 20000) {
    const seen = notifications.find((n) => n.method === method && pred(n.params));
    if (seen) return Promise.resolve(seen.params);
    return new Promise((resolve, reject) => {
      const w = { match: (m, p) => m === method && pred(p), resolve };
      waiters.push(w);
      setTimeout(() => reject(new Error(`timed out waiting for ${method}; got ${JSON.stringify(notifications.map((n) => n.method))}; stderr: ${stderr.slice(-2000)}`)), timeoutMs).unref();
    });
  }
  /** sendRequest that fails fast (with the server's stderr) if the server dies first. */
  function request(method, params, timeoutMs = 30000) {
    let timer;
    return Promise.race([
      connection.sendRequest(method, params),
      exited.then(({ code, signal }) => {
        throw new Error(`server exited (code ${code}, signal ${signal}) during ${method}; stderr:\n${stderr.slice(-3000)}`);
      }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${method} timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }
  return { proc, connection, request, notifications, waitFor, exited, stderr: () => stderr };
}

const CLIENT_CAPABILITIES = {
  general: { positionEncodings: ['utf-16'] },
  workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: false }, executeCommand: {} },
  textDocument: {
    synchronization: { didSave: false },
    completion: { completionItem: { snippetSupport: false, insertReplaceSupport: true } },
    inlineCompletion: {},
    publishDiagnostics: {},
    codeAction: { codeActionLiteralSupport: { codeActionKind: { valueSet: ['quickfix', 'refactor', 'source'] } } },
  },
  window: { workDoneProgress: false },
};

module.exports = { serverCommand, startServer, CLIENT_CAPABILITIES, rootUri: (p) => 'file://' + path.resolve(p) };

/**
 * Documents (languageId, text; the cursor goes at the end). With the fixed test model
 * (tests/editors/fixed_model.py) the first always completes, with exactly $GPT_LSP_EXPECT; the
 * others sit inside open string literals, where even a random model's gibberish parses. Tests pick
 * the first that yields items (the same list as tests/editors/lsp_probe.py).
 */
const CANDIDATES = [
  { languageId: 'python', ext: 'py', text: 'def greet(name):\n    return ' },
  { languageId: 'python', ext: 'py', text: 's = "hello ' },
  { languageId: 'python', ext: 'py', text: 'print("Hello, ' },
  { languageId: 'javascript', ext: 'js', text: 'const s = "hello ' },
  { languageId: 'go', ext: 'go', text: 'package main\n\nfunc main() {\n\ts := "hello ' },
];

function endPosition(text) {
  const lines = text.split('\n');
  return { line: lines.length - 1, character: lines[lines.length - 1].length };
}

/** Poll gpt-lsp.status until the model has loaded (state no longer "disabled"/"starting"). */
async function waitReady(request, timeoutMs = 60000) {
  const start = Date.now();
  let status;
  for (;;) {
    status = await request('workspace/executeCommand', { command: 'gpt-lsp.status', arguments: [] });
    if (status && status.state === 'ready') return status;
    if (Date.now() - start > timeoutMs) throw new Error(`model not ready: ${JSON.stringify(status)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

module.exports.CANDIDATES = CANDIDATES;
module.exports.endPosition = endPosition;
module.exports.waitReady = waitReady;
