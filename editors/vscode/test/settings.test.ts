import { strict as assert } from 'node:assert';
import { DEFAULTS, languageEnabled, normalizeRemoteUrl, parseSettings } from '../src/settings';

describe('settings', () => {
  it('defaults when nothing is set', () => {
    const { settings, problems } = parseSettings({});
    assert.deepEqual(settings, DEFAULTS);
    assert.deepEqual(problems, []);
  });

  it('takes valid values', () => {
    const { settings, problems } = parseSettings({
      enable: false, mode: 'remote', remoteUrl: ' wss://gpu.example.com/lsp ', debounceMs: 50, maxTokens: 64.4,
      languages: ['python', ' !json ', ''], modelPath: '/models/x', serverPath: '/opt/latentd',
    });
    assert.deepEqual(problems, []);
    assert.equal(settings.enable, false);
    assert.equal(settings.mode, 'remote');
    assert.equal(settings.remoteUrl, 'wss://gpu.example.com/lsp');
    assert.equal(settings.debounceMs, 50);
    assert.equal(settings.maxTokens, 64);
    assert.deepEqual(settings.languages, ['python', '!json']);
    assert.equal(settings.modelPath, '/models/x');
    assert.equal(settings.serverPath, '/opt/latentd');
  });

  it('reports wrong types with expected and found, keeping defaults', () => {
    const { settings, problems } = parseSettings({ enable: 'yes', mode: 'cloud', debounceMs: 'fast', languages: 'python' });
    assert.equal(settings.enable, true);
    assert.equal(settings.mode, 'local');
    assert.equal(settings.debounceMs, DEFAULTS.debounceMs);
    assert.deepEqual(settings.languages, ['*']);
    assert.equal(problems.length, 4);
    assert.match(problems[0], /latent\.enable: expected true or false, found "yes"/);
    assert.match(problems[1], /latent\.mode: expected "local" or "remote", found "cloud"/);
    assert.match(problems[2], /latent\.debounceMs: expected a number .* found "fast"/);
    assert.match(problems[3], /latent\.languages: expected an array/);
  });

  it('clamps numbers out of range', () => {
    const { settings, problems } = parseSettings({ debounceMs: -5, maxTokens: 100000 });
    assert.equal(settings.debounceMs, 0);
    assert.equal(settings.maxTokens, 4096);
    assert.equal(problems.length, 2);
    assert.match(problems[1], /found 100000; clamped/);
  });

  it('requires a ws(s) URL in remote mode', () => {
    assert.match(parseSettings({ mode: 'remote' }).problems[0], /expected a ws:\/\/ or wss:\/\/ URL in remote mode/);
    assert.match(parseSettings({ mode: 'remote', remoteUrl: 'https://x/lsp' }).problems[0], /found "https:\/\/x\/lsp"/);
    assert.deepEqual(parseSettings({ mode: 'remote', remoteUrl: 'ws://127.0.0.1:7070' }).problems, []);
  });

  it('server arguments: an array of strings', () => {
    assert.deepEqual(parseSettings({ serverArgs: ['--log-level', 'debug'] }).settings.serverArgs, ['--log-level', 'debug']);
    const bad = parseSettings({ serverArgs: '--log-level debug' });
    assert.deepEqual(bad.settings.serverArgs, []);
    assert.match(bad.problems[0], /latent\.serverArgs: expected an array of strings, found "--log-level debug"/);
  });

  it('an empty server path falls back to latentd', () => {
    assert.equal(parseSettings({ serverPath: '  ' }).settings.serverPath, 'latentd');
  });

  it('languages: star, explicit ids, exclusions', () => {
    assert.equal(languageEnabled(['*'], 'python'), true);
    assert.equal(languageEnabled(['*', '!python'], 'python'), false);
    assert.equal(languageEnabled(['*', '!python'], 'go'), true);
    assert.equal(languageEnabled(['go', 'rust'], 'rust'), true);
    assert.equal(languageEnabled(['go', 'rust'], 'python'), false);
    assert.equal(languageEnabled([], 'python'), false);
  });

  it('remote URL path defaults to /lsp', () => {
    assert.equal(normalizeRemoteUrl('wss://gpu.example.com'), 'wss://gpu.example.com/lsp');
    assert.equal(normalizeRemoteUrl('wss://gpu.example.com/'), 'wss://gpu.example.com/lsp');
    assert.equal(normalizeRemoteUrl('ws://127.0.0.1:8080/custom'), 'ws://127.0.0.1:8080/custom');
  });
});
