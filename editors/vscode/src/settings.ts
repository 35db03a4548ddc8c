// Settings parsing: the raw `latent.*` configuration (unknown values from the user's settings.json) turned
// into a validated Settings object plus a list of "expected X, found Y" problems. No `vscode` import, so it
// is unit-tested without VS Code.

export type Mode = 'local' | 'remote';

export interface Settings {
  enable: boolean;
  mode: Mode;
  serverPath: string;
  serverArgs: string[]; // extra latentd arguments in local mode
  modelPath: string;    // '' = latentd's embedded default model
  remoteUrl: string;    // ws:// or wss:// URL; required in remote mode
  debounceMs: number;
  maxTokens: number;
  languages: string[];  // ['*'] = all; '!id' excludes
}

export const DEFAULTS: Settings = {
  enable: true,
  mode: 'local',
  serverPath: 'latentd',
  serverArgs: [],
  modelPath: '',
  remoteUrl: '',
  debounceMs: 120,
  maxTokens: 128,
  languages: ['*'],
};

export interface Parsed {
  settings: Settings;
  problems: string[];
}

type Raw = Record<string, unknown>;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v);
  return `${typeof v} ${JSON.stringify(v)}`;
}

function number(raw: Raw, key: keyof Settings, lo: number, hi: number, problems: string[]): number {
  const v = raw[key];
  const fallback = DEFAULTS[key] as number;
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    problems.push(`latent.${key}: expected a number in [${lo}, ${hi}], found ${describe(v)}`);
    return fallback;
  }
  if (v < lo || v > hi) {
    problems.push(`latent.${key}: expected a number in [${lo}, ${hi}], found ${v}; clamped`);
    return Math.min(hi, Math.max(lo, v));
  }
  return key === 'maxTokens' ? Math.round(v) : v;
}

function string(raw: Raw, key: keyof Settings, problems: string[]): string {
  const v = raw[key];
  if (v === undefined) return DEFAULTS[key] as string;
  if (typeof v !== 'string') {
    problems.push(`latent.${key}: expected a string, found ${describe(v)}`);
    return DEFAULTS[key] as string;
  }
  return v.trim();
}

export function parseSettings(raw: Raw): Parsed {
  const problems: string[] = [];
  const s: Settings = { ...DEFAULTS, languages: [...DEFAULTS.languages], serverArgs: [] };

  if (raw.enable !== undefined) {
    if (typeof raw.enable === 'boolean') s.enable = raw.enable;
    else problems.push(`latent.enable: expected true or false, found ${describe(raw.enable)}`);
  }
  if (raw.mode !== undefined) {
    if (raw.mode === 'local' || raw.mode === 'remote') s.mode = raw.mode;
    else problems.push(`latent.mode: expected "local" or "remote", found ${describe(raw.mode)}`);
  }
  s.serverPath = string(raw, 'serverPath', problems) || DEFAULTS.serverPath;
  s.modelPath = string(raw, 'modelPath', problems);
  s.remoteUrl = string(raw, 'remoteUrl', problems);
  s.debounceMs = number(raw, 'debounceMs', 0, 2000, problems);
  s.maxTokens = number(raw, 'maxTokens', 1, 4096, problems);

  if (raw.serverArgs !== undefined) {
    const v = raw.serverArgs;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      problems.push(`latent.serverArgs: expected an array of strings, found ${describe(v)}`);
    } else {
      s.serverArgs = [...v];
    }
  }
  if (raw.languages !== undefined) {
    const v = raw.languages;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      problems.push(`latent.languages: expected an array of language ids, found ${describe(v)}`);
    } else {
      s.languages = v.map((x: string) => x.trim()).filter((x) => x.length > 0);
    }
  }

  if (s.mode === 'remote') {
    if (!s.remoteUrl) {
      problems.push('latent.remoteUrl: expected a ws:// or wss:// URL in remote mode, found nothing');
    } else if (!/^wss?:\/\/[^/\s]+/.test(s.remoteUrl)) {
      problems.push(`latent.remoteUrl: expected a ws:// or wss:// URL, found ${describe(s.remoteUrl)}`);
    }
  }
  return { settings: s, problems };
}

// Whether completions are wanted in `languageId`: exclusions ('!python') win over '*' and explicit ids.
export function languageEnabled(languages: readonly string[], languageId: string): boolean {
  if (languages.includes(`!${languageId}`)) return false;
  return languages.includes('*') || languages.includes(languageId);
}

// The remote URL with its path defaulted to /lsp (users often paste just wss://host).
export function normalizeRemoteUrl(url: string): string {
  const m = /^(wss?:\/\/[^/?#\s]+)(\/[^\s]*)?$/.exec(url.trim());
  if (!m) return url.trim();
  return m[2] && m[2] !== '/' ? m[1] + m[2] : `${m[1]}/lsp`;
}
