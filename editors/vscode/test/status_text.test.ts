import { strict as assert } from 'node:assert';
import { formatBytes, statusView } from '../src/status_text';

describe('statusView', () => {
  it('loading shows progress', () => {
    const v = statusView({ kind: 'loading', enabled: true, progress: 0.426, message: 'weights' });
    assert.equal(v.text, '$(loading~spin) Latent 43%');
    assert.match(v.tooltip, /loading \(weights\)/);
  });
  it('loading says the phase and its bytes (a GPU upload)', () => {
    const v = statusView({ kind: 'loading', enabled: true, progress: 0.45, phase: 'uploading',
      bytesDone: 1.5 * 2 ** 30, bytesTotal: 3 * 2 ** 30, message: "uploading lite's weights to cuda:0" });
    assert.equal(v.text, '$(loading~spin) Latent 45%');
    assert.match(v.tooltip, /^Latent: uploading, 1\.5 GiB of 3\.0 GiB \(uploading lite's weights to cuda:0\)\./);
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
  });
  it('ready shows the last latency', () => {
    assert.equal(statusView({ kind: 'ready', enabled: true }).text, '$(sparkle) Latent');
    assert.equal(statusView({ kind: 'ready', enabled: true, latencyMs: 87.6 }).text, '$(sparkle) Latent 88 ms');
  });
  it('error is flagged; disabled wins over everything', () => {
    const e = statusView({ kind: 'error', enabled: true, message: 'latentd died' });
    assert.equal(e.error, true);
    assert.match(e.tooltip, /latentd died\. Click to disable/);
    const d = statusView({ kind: 'error', enabled: false });
    assert.equal(d.text, '$(circle-slash) Latent');
    assert.match(d.tooltip, /Click to enable/);
  });
});
