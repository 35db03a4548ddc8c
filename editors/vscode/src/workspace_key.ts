// The workspace key a load balancer routes on (nginx `hash $http_x_latent_workspace consistent`, docs/team.md):
// the same workspace always reaches the same latentd replica, which holds its prefix cache. A hash of the
// workspace folders' URIs, so that no path leaves the machine; order-independent for multi-root workspaces.
// Imports no VS Code, so it is unit-tested as it is.
import { createHash } from 'node:crypto';

export const WORKSPACE_HEADER = 'X-Latent-Workspace';

// 32 hex digits (128 bits of SHA-256) of the sorted folder URIs, or undefined with no folder open (a loose
// file: the balancer then routes on the token).
export function workspaceKey(folderUris: readonly string[]): string | undefined {
  const uris = [...new Set(folderUris)].sort();
  if (uris.length === 0) return undefined;
  return createHash('sha256').update(`latent-workspace\n${uris.join('\n')}`).digest('hex').slice(0, 32);
}
