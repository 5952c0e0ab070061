// gpt-lsp for VS Code: starts `gpt-lsp --stdio` and lets vscode-languageclient wire up inline
// completions (ghost text), list completions, code actions and diagnostics. This file adds what
// the generic client lacks: finding the server, a status-bar item fed by `gpt-lsp/status`, and
// toggle / restart / log / status commands.
import * as vscode from 'vscode';
import {
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';
import { resolveServerCommand, ServerCommand, ServerNotFoundError } from './serverCommand';
import { buildServerSettings, SECTION, serverSettingKeys, SettingsObject } from './settings';

export const LANGUAGES = [
  'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact',
  'go', 'rust', 'java', 'c', 'cpp',
];

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
  private readonly keys: string[];

  constructor(context: vscode.ExtensionContext) {
    this.log = vscode.window.createOutputChannel('gpt-lsp', { log: true });
    this.keys = serverSettingKeys(context.extension.packageJSON);
  }

  serverSettings(): SettingsObject {
    const config = vscode.workspace.getConfiguration(SECTION);
    return buildServerSettings(this.keys, (key) => config.get(key));
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
      documentSelector: LANGUAGES.flatMap((language) => [
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

  private async notifyMissing(message: string, fix: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(`gpt-lsp: ${message} ${fix}`, 'Open Settings', 'Show Log');
    if (choice === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'gptLsp.server');
    } else if (choice === 'Show Log') {
      this.log.show(true);
    }
  }

  private async notifyFailed(cmd: ServerCommand, message: string): Promise<void> {
    const hint = cmd.source === 'gptLsp.server.pythonPath'
      ? ` Does ${cmd.command} have gpt-lsp installed (\`${cmd.command} -m pip install gpt-lsp\`)?`
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

  async onConfigurationChanged(e: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!e.affectsConfiguration(SECTION)) return;
    if (e.affectsConfiguration(`${SECTION}.server`)) {
      this.log.info('Server launch settings changed; restarting');
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
