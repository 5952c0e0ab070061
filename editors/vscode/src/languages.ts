// Which languages the extension serves: `gptLsp.languages`, a map of VS Code language id -> enabled,
// in the style of Copilot's `github.copilot.enable`. Plain Node (no `vscode` import) so it is testable.

/** Languages the server has a tree-sitter grammar for; the default map enables each of them. */
export const DEFAULT_LANGUAGES = [
  'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact',
  'go', 'rust', 'java', 'c', 'cpp',
];

/**
 * The language ids to attach to. Ids missing from the setting keep their default (on for the
 * defaults), so `{ "go": false }` turns Go off and leaves the rest alone; `true` for another id
 * adds it (the server then completes without a grammar, on text rules). A malformed value is
 * ignored in favour of the defaults.
 */
export function enabledLanguages(setting: unknown): string[] {
  const map = setting !== null && typeof setting === 'object' && !Array.isArray(setting)
    ? (setting as Record<string, unknown>)
    : {};
  const enabled = new Set(DEFAULT_LANGUAGES.filter((id) => map[id] !== false));
  for (const [id, on] of Object.entries(map)) {
    if (on === true) enabled.add(id);
  }
  return [...enabled];
}
