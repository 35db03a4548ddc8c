// The daemon's token, when it has one (--token-file): asked for in a dialog and kept in this tab's
// sessionStorage (gone when the tab closes). Probed with GET /v1/models, which needs the token like
// everything else but the pages themselves.
import { WORKSPACE_HEADER, workspaceKey } from './workspace';

const KEY = 'latent.token';

export function storedToken(): string { return sessionStorage.getItem(KEY) ?? ''; }

export function authHeaders(token: string): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// The token and this browser's workspace key (workspace.ts), for every request to latentd.
export function requestHeaders(token: string): Record<string, string> {
  return { ...authHeaders(token), [WORKSPACE_HEADER]: workspaceKey() };
}

function askToken(message: string): Promise<string> {
  const dialog = document.getElementById('token-dialog') as HTMLDialogElement;
  const input = document.getElementById('token-input') as HTMLInputElement;
  (document.getElementById('token-message') as HTMLElement).textContent = message;
  input.value = '';
  return new Promise((resolve) => {
    const form = dialog.querySelector('form') as HTMLFormElement;
    form.onsubmit = (ev) => {
      ev.preventDefault();
      dialog.close();
      resolve(input.value.trim());
    };
    dialog.showModal();
    input.focus();
  });
}

// Resolves with the token to use ('' when the daemon needs none), asking until one works.
export async function authorize(): Promise<string> {
  let token = storedToken();
  for (;;) {
    const r = await fetch('/v1/models', { headers: requestHeaders(token) });
    if (r.ok) {
      if (token) sessionStorage.setItem(KEY, token);
      return token;
    }
    if (r.status !== 401) {
      throw new Error(`expected GET /v1/models to answer 200 or 401, found ${r.status}: ${(await r.text()).slice(0, 200)}`);
    }
    sessionStorage.removeItem(KEY);
    token = await askToken(token ? 'That token was refused. Enter the daemon\'s token (its --token-file):'
      : 'This latentd needs a token (its --token-file). It is kept in this tab only:');
  }
}

export function forgetToken(): void { sessionStorage.removeItem(KEY); }
