// gpt-lsp for VS Code: starts `gpt-lsp --stdio` and lets vscode-languageclient wire up inline
// completions (ghost text), list completions, code actions and diagnostics. This file adds what
// the generic client lacks: finding the server (with a first-run prompt when it is missing), the
// languages to serve (`gptLsp.languages`), a status-bar item fed by `gpt-lsp/status`, toggle /
// restart / log / status commands, and "Show how this was made" (`gpt-lsp complete --explain`).
import * as vscode from 'vscode';
import {
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';
import * as fs from 'fs';
import * as path from 'path';
import { EXPLAIN_SCHEME, ExplainDocuments, explainAt } from './explain';
import { enabledLanguages } from './languages';
import { resolveServerCommand, ServerCommand, ServerNotFoundError } from './serverCommand';
import { buildServerSettings, SECTION, serverSettingKeys, SettingsObject } from './settings';

const INSTALL_CHOICE = 'Install with pipx…';
const LOCATE_CHOICE = 'Locate gpt-lsp…';

/** Params of the server's `gpt-lsp/status` notification. */
export interface StatusParams {
  state: 'ready' | 'generating' | 'disabled' | 'error' | string;
  reason?: string;
  uri?: string | null;
}

type UiState = StatusParams['state'] | 'starting' | 'stopped' | 'missing';

const ICONS: Record<string, string> = {
  ready: '$(sparkle)',
  generating: '$(loading~spin)',
  disabled: '$(circle-slash)',
  error: '$(error)',
  starting: '$(sync~spin)',
  stopped: '$(debug-disconnect)',
  missing: '$(warning)',
};

export class StatusBar implements vscode.Disposable {
  readonly item: vscode.StatusBarItem;
  state: UiState = 'starting';
  reason = '';

  constructor() {
    this.item = vscode.window.createStatusBarItem('gptLsp.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'gpt-lsp';
    this.item.command = 'gptLsp.showStatus';
    this.set('starting', 'Starting the gpt-lsp server');
    this.item.show();
  }

  set(state: UiState, reason?: string): void {
    this.state = state;
    // Keep the last reason when a notification comes without one (e.g. "generating").
    if (reason !== undefined && reason !== '') this.reason = reason;
    this.item.text = `${ICONS[state] ?? '$(question)'} gpt-lsp`;
    this.item.tooltip = `gpt-lsp: ${state}` + (this.reason ? `\n${this.reason}` : '') + '\nClick for status and actions';
    this.item.backgroundColor =
      state === 'error' || state === 'missing' ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : state === 'disabled' ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}

export interface GptLspApi {
  /** The running client (undefined while stopped or when the server is missing). */
  readonly client: LanguageClient | undefined;
  readonly statusBar: StatusBar;
  /** Settles when the current start attempt has finished (successfully or not). */
  readonly started: Promise<void>;
  serverSettings(): SettingsObject;
  restart(): Promise<void>;
}

let controller: Controller | undefined;

class Controller implements GptLspApi {
  client: LanguageClient | undefined;
  started: Promise<void> = Promise.resolve();
  readonly statusBar = new StatusBar();
  readonly log: vscode.LogOutputChannel;
  readonly explanations = new ExplainDocuments();
  private readonly keys: string[];

  constructor(context: vscode.ExtensionContext) {
    this.log = vscode.window.createOutputChannel('gpt-lsp', { log: true });
    this.keys = serverSettingKeys(context.extension.packageJSON);
  }

  serverSettings(): SettingsObject {
    const config = vscode.workspace.getConfiguration(SECTION);
    return buildServerSettings(this.keys, (key) => config.get(key));
  }

  /** The language ids the client attaches to, from `gptLsp.languages`. */
  languages(): string[] {
    return enabledLanguages(vscode.workspace.getConfiguration(SECTION).get('languages'));
  }

  private command(): ServerCommand {
    const config = vscode.workspace.getConfiguration(SECTION);
    // Only a trusted workspace may supply its own server from .venv.
    const folders = vscode.workspace.isTrusted
      ? (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath)
      : [];
    return resolveServerCommand(
      {
        path: config.get<string>('server.path') ?? '',
        pythonPath: config.get<string>('server.pythonPath') ?? '',
        args: config.get<string[]>('server.args') ?? [],
      },
      { workspaceFolders: folders },
    );
  }

  start(): Promise<void> {
    this.started = this.doStart();
    return this.started;
  }

  private async doStart(): Promise<void> {
    this.statusBar.set('starting', 'Starting the gpt-lsp server');
    let cmd: ServerCommand;
    try {
      cmd = this.command();
    } catch (err) {
      if (err instanceof ServerNotFoundError) {
        this.statusBar.set('missing', err.message);
        this.log.error(`${err.message} ${err.fix}`);
        void this.notifyMissing(err.message, err.fix);
        return;
      }
      throw err;
    }
    this.log.info(`Starting ${cmd.command} ${cmd.args.join(' ')} (from ${cmd.source})`);
    const serverOptions: ServerOptions = { command: cmd.command, args: cmd.args, options: { env: process.env } };
    const clientOptions: LanguageClientOptions = {
      documentSelector: this.languages().flatMap((language) => [
        { scheme: 'file', language },
        { scheme: 'untitled', language },
      ]),
      initializationOptions: this.serverSettings(),
      outputChannel: this.log,
      traceOutputChannel: this.log,
      middleware: {
        workspace: {
          // Answer pulls of our own section with exactly what the server understands.
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result)) return result;
            return params.items.map((item, i) => (item.section === SECTION ? this.serverSettings() : result[i]));
          },
        },
      },
    };
    const client = new LanguageClient(SECTION, 'gpt-lsp', serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((e) => {
      if (e.newState === State.Stopped && this.client === client) this.statusBar.set('stopped', 'The server stopped');
    });
    try {
      await client.start();
    } catch (err) {
      this.client = undefined;
      const message = err instanceof Error ? err.message : String(err);
      this.statusBar.set('error', `The server failed to start: ${message}`);
      this.log.error(`Failed to start ${cmd.command}: ${message}`);
      void this.notifyFailed(cmd, message);
      return;
    }
    client.onNotification('gpt-lsp/status', (params: StatusParams) => {
      this.statusBar.set(params.state, params.reason);
      if (params.state === 'error' || params.state === 'disabled') {
        this.log.warn(`status ${params.state}: ${params.reason ?? ''}`);
      }
    });
    if (this.statusBar.state === 'starting') this.statusBar.set('ready', 'Server started');
  }

  /** First run without a server: offer to install it from a checkout, or to point at one. */
  private async notifyMissing(message: string, fix: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(
      `gpt-lsp: ${message} ${fix}`, INSTALL_CHOICE, LOCATE_CHOICE, 'Open Settings');
    if (choice === INSTALL_CHOICE) await this.installWithPipx();
    else if (choice === LOCATE_CHOICE) await this.locateServer();
    else if (choice === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'gptLsp.server');
  }

  /** Pick a gpt-lsp checkout and run `pipx install` on it in a terminal the user can watch. */
  async installWithPipx(): Promise<void> {
    const picked = await vscode.window.showOpenDialog({
      canSelectFolders: true, canSelectFiles: false, canSelectMany: false,
      openLabel: 'Install gpt-lsp from this checkout', title: 'The gpt-lsp source folder (it has pyproject.toml)',
    });
    const folder = picked?.[0]?.fsPath;
    if (!folder) return;
    const pyproject = path.join(folder, 'pyproject.toml');
    if (!fs.existsSync(pyproject) || !/^name\s*=\s*"gpt-lsp"/m.test(fs.readFileSync(pyproject, 'utf8'))) {
      void vscode.window.showErrorMessage(`gpt-lsp: ${folder} is not a gpt-lsp checkout (no pyproject.toml naming gpt-lsp).`);
      return;
    }
    const terminal = vscode.window.createTerminal({ name: 'gpt-lsp install' });
    terminal.show();
    terminal.sendText(`pipx install ${JSON.stringify(folder)}`);
    const next = await vscode.window.showInformationMessage(
      'gpt-lsp: installing with pipx in the terminal. Restart the server when it has finished.', 'Restart Server');
    if (next === 'Restart Server') await this.restart();
  }

  /** Pick the gpt-lsp executable; saving `gptLsp.server.path` restarts the server. */
  async locateServer(): Promise<void> {
    const picked = await vscode.window.showOpenDialog({
      canSelectFiles: true, canSelectFolders: false, canSelectMany: false,
      openLabel: 'Use this gpt-lsp', title: 'The gpt-lsp executable (for example ~/.local/bin/gpt-lsp)',
    });
    const file = picked?.[0]?.fsPath;
    if (!file) return;
    await vscode.workspace.getConfiguration(SECTION).update('server.path', file, vscode.ConfigurationTarget.Global);
  }

  private async notifyFailed(cmd: ServerCommand, message: string): Promise<void> {
    const hint = cmd.source === 'gptLsp.server.pythonPath'
      ? ` Does ${cmd.command} have gpt-lsp installed (\`${cmd.command} -m pip install /path/to/gpt-lsp\`)?`
      : '';
    const choice = await vscode.window.showErrorMessage(
      `gpt-lsp: the server (${cmd.command}) failed to start: ${message}.${hint}`, 'Show Log', 'Open Settings');
    if (choice === 'Show Log') this.log.show(true);
    else if (choice === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'gptLsp.server');
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop(5000);
      } catch (err) {
        this.log.warn(`Stopping the server: ${err instanceof Error ? err.message : String(err)}`);
      }
      await client.dispose().catch(() => undefined);
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** `workspace/executeCommand` on the server; undefined (with a message) when it is not running. */
  async serverCommand<T>(command: string, args: unknown[] = []): Promise<T | undefined> {
    const client = this.client;
    if (!client || !client.isRunning()) {
      void vscode.window.showWarningMessage('gpt-lsp: the server is not running.', 'Restart', 'Show Log').then(
        (choice) => choice === 'Restart' ? this.restart() : choice === 'Show Log' ? this.log.show(true) : undefined);
      return undefined;
    }
    return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args })) as T;
  }

  async toggle(): Promise<boolean | undefined> {
    const enabled = await this.serverCommand<boolean>('gpt-lsp.toggle');
    if (enabled !== undefined) {
      this.statusBar.set(enabled ? 'ready' : 'disabled', enabled ? 'AI suggestions on' : 'Turned off by gpt-lsp: Toggle');
      void vscode.window.showInformationMessage(`gpt-lsp: AI suggestions ${enabled ? 'enabled' : 'disabled'}.`);
    }
    return enabled;
  }

  async showStatus(): Promise<void> {
    const status = await this.serverCommand<Record<string, unknown>>('gpt-lsp.status').catch((err: unknown) => {
      this.log.error(`gpt-lsp.status: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    });
    const lines = status
      ? Object.entries(status).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
      : [`state: ${this.statusBar.state}`, `reason: ${this.statusBar.reason}`];
    const picks = [
      ...lines.map((label) => ({ label, action: undefined as string | undefined })),
      { label: '$(circle-slash) Toggle AI suggestions', action: 'gptLsp.toggle' },
      { label: '$(debug-restart) Restart server', action: 'gptLsp.restart' },
      { label: '$(output) Show log', action: 'gptLsp.showLog' },
    ];
    const choice = await vscode.window.showQuickPick(picks, { title: 'gpt-lsp status' });
    if (choice?.action) await vscode.commands.executeCommand(choice.action);
  }

  /** "Show how this was made": the `--explain` report for the cursor, in a read-only document. */
  async explain(): Promise<vscode.Uri | undefined> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showWarningMessage('gpt-lsp: open a file and place the cursor where a completion would go.');
      return undefined;
    }
    let cmd: ServerCommand;
    try {
      cmd = this.command();
    } catch (err) {
      if (err instanceof ServerNotFoundError) {
        void this.notifyMissing(err.message, err.fix);
        return undefined;
      }
      throw err;
    }
    // The model the running server serves (it may come from server.args); else the setting.
    const status = this.client?.isRunning()
      ? await this.serverCommand<{ model?: string }>('gpt-lsp.status').catch(() => undefined)
      : undefined;
    const model = status?.model ?? vscode.workspace.getConfiguration(SECTION).get<string | null>('model.path') ?? undefined;
    try {
      const uri = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: 'gpt-lsp: explaining the completion' },
        () => explainAt(editor, cmd, model || undefined, this.explanations));
      const doc = await vscode.workspace.openTextDocument(uri);
      await vscode.window.showTextDocument(doc, { preview: false, viewColumn: vscode.ViewColumn.Beside });
      return uri;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error(`gpt-lsp complete --explain: ${message}`);
      void vscode.window.showErrorMessage(`gpt-lsp: could not explain the completion: ${message}`, 'Show Log')
        .then((choice) => choice === 'Show Log' ? this.log.show(true) : undefined);
      return undefined;
    }
  }

  async onConfigurationChanged(e: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!e.affectsConfiguration(SECTION)) return;
    if (e.affectsConfiguration(`${SECTION}.server`) || e.affectsConfiguration(`${SECTION}.languages`)) {
      this.log.info('Server launch settings or languages changed; restarting');
      await this.restart();
      return;
    }
    if (this.client?.isRunning()) {
      await this.client.sendNotification('workspace/didChangeConfiguration', {
        settings: { [SECTION]: this.serverSettings() },
      });
    }
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<GptLspApi> {
  const c = new Controller(context);
  controller = c;
  context.subscriptions.push(
    c.statusBar,
    c.log,
    vscode.commands.registerCommand('gptLsp.toggle', () => c.toggle()),
    vscode.commands.registerCommand('gptLsp.restart', () => c.restart()),
    vscode.commands.registerCommand('gptLsp.showLog', () => c.log.show(true)),
    vscode.commands.registerCommand('gptLsp.showStatus', () => c.showStatus()),
    vscode.commands.registerCommand('gptLsp.explain', () => c.explain()),
    vscode.commands.registerCommand('gptLsp.installServer', () => c.installWithPipx()),
    vscode.workspace.registerTextDocumentContentProvider(EXPLAIN_SCHEME, c.explanations),
    vscode.workspace.onDidChangeConfiguration((e) => c.onConfigurationChanged(e)),
    { dispose: () => void c.stop() },
  );
  // Do not block activation on the server: the status bar shows progress and failures.
  void c.start();
  return c;
}

export async function deactivate(): Promise<void> {
  const c = controller;
  controller = undefined;
  await c?.stop();
}
