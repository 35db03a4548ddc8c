import { strict as assert } from 'node:assert';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findExecutable } from '../src/which';

describe('findExecutable', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'latent-which-'));
    writeFileSync(path.join(dir, 'latentd'), '#!/bin/sh\n');
    chmodSync(path.join(dir, 'latentd'), 0o755);
    writeFileSync(path.join(dir, 'plain'), '');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('searches PATH for a bare name', () => {
    assert.equal(findExecutable('latentd', `/nonexistent${path.delimiter}${dir}`), path.join(dir, 'latentd'));
    assert.equal(findExecutable('latentd', '/nonexistent'), undefined);
  });
  it('takes a path with a slash as is (relative to cwd)', () => {
    assert.equal(findExecutable(path.join(dir, 'latentd'), ''), path.join(dir, 'latentd'));
    assert.equal(findExecutable('./latentd', '', dir), path.join(dir, 'latentd'));
  });
  it('rejects files that are not executable, folders and empty names', () => {
    assert.equal(findExecutable(path.join(dir, 'plain'), ''), undefined);
    assert.equal(findExecutable(dir, ''), undefined);
    assert.equal(findExecutable('', dir), undefined);
  });
});
