// Where the gpt-lsp server executable is and how to start it. Plain Node (no `vscode` import) so the
// protocol tests can use exactly the same resolution as the extension.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface LaunchSettings {
  /** gptLsp.server.path: the `gpt-lsp` executable ("" = not set). */
  path: string;
  /** gptLsp.server.pythonPath: a Python interpreter with gpt-lsp installed ("" = not set). */
  pythonPath: string;
  /** gptLsp.server.args: extra arguments after `--stdio`. */
  args: string[];
}

export interface ServerCommand {
  command: string;
  args: string[];
  /** Which setting (or lookup) produced the command, for messages and the log. */
  source: 'gptLsp.server.path' | 'gptLsp.server.pythonPath' | 'workspace venv' | 'PATH';
}

/** The server could not be found; `fix` tells the user what to do about it. */
export class ServerNotFoundError extends Error {
  constructor(message: string, readonly fix: string) {
    super(message);
    this.name = 'ServerNotFoundError';
  }
}

export const INSTALL_FIX =
  'gpt-lsp is not published on PyPI yet: install the server from a checkout with ' +
  '`pipx install /path/to/gpt-lsp`, or set "gptLsp.server.path" to the gpt-lsp executable, or ' +
  '"gptLsp.server.pythonPath" to a Python that has it.';

/** Runs the console script's entry point, so any interpreter with the package installed works. */
export const PYTHON_BOOTSTRAP = 'import sys; from gpt_lsp.cli import main; sys.exit(main())';

const isWindows = (platform: string) => platform === 'win32';

export function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/') || p.startsWith('~\\')) return path.join(os.homedir(), p.slice(2));
  return p;
}

function isExecutableFile(p: string, platform: string): boolean {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) return false;
    if (isWindows(platform)) return true;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Like `which`: the first executable `name` on `envPath`, or undefined. */
export function findOnPath(
  name: string,
  envPath: string | undefined = process.env.PATH,
  platform: string = process.platform,
  pathExt: string | undefined = process.env.PATHEXT,
): string | undefined {
  const exts = isWindows(platform) ? ['', ...(pathExt ?? '.EXE;.CMD;.BAT').split(';')] : [''];
  for (const dir of (envPath ?? '').split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      if (isExecutableFile(candidate, platform)) return candidate;
    }
  }
  return undefined;
}

/** A configured program: an absolute/relative path must exist; a bare name is looked up on PATH. */
function resolveConfigured(value: string, setting: string, platform: string, envPath?: string): string {
  const expanded = expandHome(value.trim());
  const hasSeparator = expanded.includes('/') || (isWindows(platform) && expanded.includes('\\'));
  const found = hasSeparator
    ? (isExecutableFile(expanded, platform) ? expanded : undefined)
    : findOnPath(expanded, envPath, platform);
  if (!found) {
    throw new ServerNotFoundError(
      `"${setting}" is set to ${JSON.stringify(value)}, which is not an executable file.`,
      `Fix "${setting}" (an absolute path works best) or clear it to use gpt-lsp from PATH. ${INSTALL_FIX}`,
    );
  }
  return found;
}

/**
 * Decide how to start the server: gptLsp.server.path, else gptLsp.server.pythonPath, else a
 * `gpt-lsp` in a trusted workspace's virtual environment, else `gpt-lsp` on PATH (and ~/.local/bin,
 * where pipx puts it, which GUI-started editors often miss).
 */
export function resolveServerCommand(
  settings: LaunchSettings,
  options: { workspaceFolders?: string[]; envPath?: string; platform?: string } = {},
): ServerCommand {
  const platform = options.platform ?? process.platform;
  const envPath = options.envPath ?? process.env.PATH;
  const extra = settings.args ?? [];
  if (settings.path && settings.path.trim()) {
    const command = resolveConfigured(settings.path, 'gptLsp.server.path', platform, envPath);
    return { command, args: ['--stdio', ...extra], source: 'gptLsp.server.path' };
  }
  if (settings.pythonPath && settings.pythonPath.trim()) {
    const command = resolveConfigured(settings.pythonPath, 'gptLsp.server.pythonPath', platform, envPath);
    return { command, args: ['-c', PYTHON_BOOTSTRAP, '--stdio', ...extra], source: 'gptLsp.server.pythonPath' };
  }
  const exe = isWindows(platform) ? 'gpt-lsp.exe' : 'gpt-lsp';
  const binDir = isWindows(platform) ? 'Scripts' : 'bin';
  for (const folder of options.workspaceFolders ?? []) {
    for (const venv of ['.venv', 'venv']) {
      const candidate = path.join(folder, venv, binDir, exe);
      if (isExecutableFile(candidate, platform)) {
        return { command: candidate, args: ['--stdio', ...extra], source: 'workspace venv' };
      }
    }
  }
  const onPath = findOnPath('gpt-lsp', envPath, platform) ??
    findOnPath('gpt-lsp', path.join(os.homedir(), '.local', 'bin'), platform);
  if (onPath) return { command: onPath, args: ['--stdio', ...extra], source: 'PATH' };
  throw new ServerNotFoundError('The gpt-lsp language server was not found on PATH.', INSTALL_FIX);
}

/** The same program run as a one-shot CLI (`gpt-lsp complete ...`) instead of `--stdio`. */
export function cliCommand(server: ServerCommand, subcommand: string[]): { command: string; args: string[] } {
  const stdio = server.args.indexOf('--stdio');
  return { command: server.command, args: [...server.args.slice(0, Math.max(stdio, 0)), ...subcommand] };
}

/** `FILE:LINE:COL` for `gpt-lsp complete`: 1-based, COL in characters (VS Code counts UTF-16 units). */
export function completeTarget(file: string, line: number, lineText: string, utf16Character: number): string {
  return `${file}:${line + 1}:${Array.from(lineText.slice(0, utf16Character)).length + 1}`;
}
