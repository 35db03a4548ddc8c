// Bundles the extension (dist/extension.js) or, with --tests, each unit test (out/test/*.test.js).
import * as esbuild from 'esbuild';
import { readdirSync } from 'node:fs';

const tests = process.argv.includes('--tests');
const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', sourcemap: true, logLevel: 'warning' };
if (tests) {
  const entries = readdirSync('test').filter((f) => f.endsWith('.test.ts')).map((f) => `test/${f}`);
  // Unit tests must not need VS Code: marking it external makes an accidental import fail loudly at run time.
  await esbuild.build({ ...common, entryPoints: entries, outdir: 'out/test', external: ['vscode', 'mocha'] });
} else {
  await esbuild.build({ ...common, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.js',
    external: ['vscode'], minify: true });
}
