// Finds a program the way a shell would (a path with a slash as is, else each PATH entry), so that a missing
// latentd is reported as "expected ..., found none" instead of a spawn error deep in the client.
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

export function findExecutable(program: string, envPath = process.env.PATH ?? '', cwd = process.cwd()): string | undefined {
  if (!program) return undefined;
  if (program.includes('/')) {
    const p = path.resolve(cwd, program);
    return executable(p) ? p : undefined;
  }
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, program);
    if (executable(p)) return p;
  }
  return undefined;
}
