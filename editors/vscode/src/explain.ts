// "gpt-lsp: Show how this was made": runs `gpt-lsp complete FILE:LINE:COL --explain` on the editor's
// current text and position and opens the report (prompt, cuts, redactions, token odds) read-only.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { cliCommand, completeTarget, ServerCommand } from './serverCommand';

export const EXPLAIN_SCHEME = 'gpt-lsp-explain';
const TIMEOUT_MS = 120_000;

/** Virtual documents are read-only in VS Code; this provider serves the reports by URI. */
export class ExplainDocuments implements vscode.TextDocumentContentProvider {
  private readonly reports = new Map<string, string>();
  private count = 0;

  add(title: string, text: string): vscode.Uri {
    this.count += 1;
    const uri = vscode.Uri.parse(`${EXPLAIN_SCHEME}:/${this.count}/${title}.txt`);
    this.reports.set(uri.toString(), text);
    return uri;
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.reports.get(uri.toString()) ?? '';
  }
}

/** Run the CLI; exit status 1 ("no completion") still carries a full report on stdout. */
function run(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, timeout: TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && !(err.code === 1 && stdout)) {
        reject(new Error(stderr.trim() || err.message));
        return;
      }
      resolve(stdout);
    });
  });
}

/**
 * Explain the completion at the cursor of `editor`. The buffer (saved or not) is written to a
 * private temporary file with the same name, so the report covers exactly what the editor holds.
 */
export async function explainAt(
  editor: vscode.TextEditor,
  server: ServerCommand,
  model: string | undefined,
  documents: ExplainDocuments,
): Promise<vscode.Uri> {
  const doc = editor.document;
  const pos = editor.selection.active;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt-lsp-explain-'));
  const name = path.basename(doc.uri.fsPath || doc.uri.path) || 'untitled.txt';
  const file = path.join(dir, name);
  try {
    fs.writeFileSync(file, doc.getText());
    const target = completeTarget(file, pos.line, doc.lineAt(pos.line).text, pos.character);
    const { command, args } = cliCommand(server, [
      'complete', target, '--explain', ...(model ? ['--model', model] : []),
    ]);
    const report = await run(command, args, dir);
    const where = `${doc.uri.fsPath || doc.uri.toString()}:${pos.line + 1}:${pos.character + 1}`;
    const header = `How gpt-lsp completes ${where} (the editor's current text, copied to ${file}):\n\n`;
    return documents.add(`${name}-${pos.line + 1}-${pos.character + 1}`, header + report);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
