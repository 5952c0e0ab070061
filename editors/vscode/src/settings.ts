// The settings object sent to the server (initializationOptions and workspace/didChangeConfiguration).
// The server rejects unknown keys, so only the keys it knows are sent: the ones package.json
// contributes minus the client-side ones (gptLsp.server.*, gptLsp.trace.*, gptLsp.languages).
export const SECTION = 'gptLsp';
export const CLIENT_ONLY_PREFIXES = ['server.', 'trace.', 'languages'];

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type SettingsObject = { [key: string]: Json };

/** Dotted keys (without the `gptLsp.` prefix) of the server's settings, from package.json. */
export function serverSettingKeys(packageJson: unknown): string[] {
  const contributes = (packageJson as { contributes?: { configuration?: unknown } }).contributes;
  const configs = Array.isArray(contributes?.configuration) ? contributes.configuration : [contributes?.configuration];
  const keys: string[] = [];
  for (const config of configs) {
    const properties = (config as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
    for (const full of Object.keys(properties)) {
      if (!full.startsWith(SECTION + '.')) continue;
      const key = full.slice(SECTION.length + 1);
      if (!CLIENT_ONLY_PREFIXES.some((p) => key.startsWith(p))) keys.push(key);
    }
  }
  return keys;
}

/** Nest dotted keys: {"model.path": null} -> {model: {path: null}}. `get` reads one dotted key. */
export function buildServerSettings(keys: string[], get: (key: string) => unknown): SettingsObject {
  const out: SettingsObject = {};
  for (const key of keys) {
    let value = get(key) as Json | undefined;
    if (value === undefined) continue;
    if (key === 'model.path' && typeof value === 'string' && value.trim() === '') value = null;
    const parts = key.split('.');
    let node = out;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) node[part] = {};
      node = node[part] as SettingsObject;
    }
    node[parts[parts.length - 1]] = value;
  }
  return out;
}
