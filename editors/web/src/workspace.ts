// This browser's workspace key, for a load balancer in front of several latentd replicas (nginx
// `hash $latent_workspace consistent`, docs/team.md): the playground's documents keep reaching the replica
// that holds their prefix cache. The playground has no workspace folder to hash (the VS Code extension hashes
// its folders' URIs), so the key is 128 random bits made once and kept in localStorage: it says nothing about
// the user. HTTP requests carry it in X-Latent-Workspace; the WebSocket, which a browser cannot give headers,
// in ?workspace=.
export const WORKSPACE_HEADER = 'X-Latent-Workspace';
const KEY = 'latent.workspace';

// getRandomValues, not randomUUID: the page may be served over plain HTTP on a LAN (not a secure context).
export function workspaceKey(storage: Pick<Storage, 'getItem' | 'setItem'> = localStorage,
  random: (b: Uint8Array) => Uint8Array = (b) => crypto.getRandomValues(b)): string {
  const kept = storage.getItem(KEY);
  if (kept && /^[0-9a-f]{32}$/.test(kept)) return kept;
  const key = Array.from(random(new Uint8Array(16)), (x) => x.toString(16).padStart(2, '0')).join('');
  storage.setItem(KEY, key);
  return key;
}
