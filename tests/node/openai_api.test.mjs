// latentd's OpenAI-compatible HTTP API through the official `openai` npm client, and llama.cpp's /infill with
// llama.vscode's request shape, against a running daemon with a real model: models/demo when it exists (or
// LATENT_OPENAI_TEST_MODEL), else tests/data/openai-tiny (random weights, real tokenizer: see its README).
// Nothing here is scripted: every token comes from the engine, so the assertions are about shapes, counts,
// determinism (greedy), the prefix cache and cancellation, never about what the text says.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const require = createRequire(import.meta.url);
const { default: OpenAI } = require("openai");

const SOURCE = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, "../..");
const LATENTD = path.join(process.env.LATENT_BIN_DIR, "latentd");
const DEMO = path.join(SOURCE, "models", "demo");
const MODEL = process.env.LATENT_OPENAI_TEST_MODEL ??
  (fs.existsSync(path.join(DEMO, "tokenizer.json")) ? DEMO : path.join(process.env.LATENT_TEST_DATA, "openai-tiny"));

// Starts latentd on a free port; resolves with {proc, base} once it listens. `launcher` ({cmd, args, env}) runs
// it through another program (mpirun).
function startDaemon(extraArgs = [], launcher = null, env = {}) {
  return new Promise((resolve, reject) => {
    const args = ["--listen", "127.0.0.1:0", "--model", MODEL, "--cache-mb", "64", ...extraArgs];
    const proc = launcher
      ? spawn(launcher.cmd, [...launcher.args, LATENTD, ...args],
              { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...launcher.env, ...env } })
      : spawn(LATENTD, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
    let log = "";
    const timer = setTimeout(() => reject(new Error(`latentd did not start in 60 s:\n${log}`)), 60000);
    proc.stderr.on("data", (d) => {
      log += d.toString();
      const m = log.match(/listening on ([\d.]+):(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, base: `http://${m[1]}:${m[2]}`, log: () => log });
      }
    });
    proc.on("exit", (code, signal) => {
      // After start-up an exit is a crash: show why next to whatever test fails because of it.
      console.error(`latentd exited (code ${code}, signal ${signal}):\n${log}`);
      reject(new Error(`latentd exited with ${code ?? signal}:\n${log}`));
    });
  });
}

function stopDaemon(d) {
  if (!d) return Promise.resolve();
  return new Promise((resolve) => {
    d.proc.removeAllListeners("exit");
    d.proc.on("exit", resolve);
    d.proc.kill("SIGTERM");
  });
}

// Polls /metrics until `pred(m)` holds; returns that sample. The bound only turns a hang into a failure
// that shows the last sample: the condition, not the clock, is what the test waits on.
async function metricsUntil(base, pred, what, boundMs = 120_000) {
  const t0 = Date.now();
  for (;;) {
    const m = await metrics(base);
    if (pred(m)) return m;
    if (Date.now() - t0 > boundMs) assert.fail(`timed out waiting for ${what}; last /metrics sample: ${JSON.stringify(m)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// The daemon's /metrics as {"name{labels}": value}.
async function metrics(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

let daemon;
let client;
let modelId;

before(async () => {
  daemon = await startDaemon();
  client = new OpenAI({ baseURL: `${daemon.base}/v1`, apiKey: "unused-on-loopback", maxRetries: 0 });
});

after(() => stopDaemon(daemon));

test("GET /v1/models lists the loaded model", async () => {
  const page = await client.models.list();
  assert.equal(page.data.length, 1);
  modelId = page.data[0].id;
  assert.equal(modelId, path.basename(MODEL));
  assert.equal(page.data[0].object, "model");
});

test("completion with a suffix (fill-in-the-middle): usage, greedy determinism, prefix-cache hits", async () => {
  const req = { model: path.basename(MODEL), prompt: "def add(a, b):\n    ", suffix: "\n\nprint(add(1, 2))\n",
                max_tokens: 12, temperature: 0 };
  const first = await client.completions.create(req);
  assert.equal(first.object, "text_completion");
  assert.match(first.id, /^cmpl-/);
  assert.equal(first.choices.length, 1);
  assert.equal(typeof first.choices[0].text, "string");
  assert.ok(["length", "stop"].includes(first.choices[0].finish_reason));
  const u = first.usage;
  assert.ok(u.completion_tokens >= 1 && u.completion_tokens <= 12, JSON.stringify(u));
  assert.ok(u.prompt_tokens > 5);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  assert.equal(typeof u.prompt_tokens_details.cached_tokens, "number");

  const again = await client.completions.create(req);
  assert.equal(again.choices[0].text, first.choices[0].text, "greedy decoding must repeat itself");
  assert.ok(again.usage.prompt_tokens_details.cached_tokens > 0,
            `the second identical prompt should hit the prefix cache: ${JSON.stringify(again.usage)}`);
  assert.ok(again.usage.prompt_tokens_details.cached_tokens < again.usage.prompt_tokens);
});

test("streamed completion: server-sent chunks add up to the non-streamed text, usage at the end", async () => {
  const req = { model: "any", prompt: "int main(int argc, char** argv) {\n", max_tokens: 16, temperature: 0 };
  const whole = await client.completions.create(req);
  const stream = await client.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = "";
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks >= 3, `expected several chunks, got ${chunks}`);
  assert.equal(text, whole.choices[0].text);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
});

test("streamed chat: the role first, then content deltas, then a finish reason", async () => {
  const stream = await client.chat.completions.create({
    model: "any", stream: true, max_tokens: 10, temperature: 0.7, seed: 5,
    messages: [{ role: "system", content: "You write Python." }, { role: "user", content: "Sum a list." }],
  });
  const deltas = [];
  let finish = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, "chat.completion.chunk");
    for (const c of chunk.choices) {
      deltas.push(c.delta);
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(deltas[0].role, "assistant");
  assert.ok(deltas.length >= 2);
  assert.ok(["length", "stop"].includes(finish));
  // Same seed, same output: sampling is per-request seeded.
  const text = deltas.map((d) => d.content ?? "").join("");
  const whole = await client.chat.completions.create({
    model: "any", max_tokens: 10, temperature: 0.7, seed: 5,
    messages: [{ role: "system", content: "You write Python." }, { role: "user", content: "Sum a list." }],
  });
  assert.equal(whole.choices[0].message.content, text);
});

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather", description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

test("tool-call round trip: a forced call comes back as OpenAI tool_calls; its result goes back in", async () => {
  const messages = [{ role: "user", content: "What is the weather in Paris?" }];
  const first = await client.chat.completions.create({
    model: "any", messages, tools: [weatherTool], max_tokens: 12, temperature: 0,
    tool_choice: { type: "function", function: { name: "get_weather" } },
  });
  const msg = first.choices[0].message;
  assert.equal(msg.role, "assistant");
  assert.equal(msg.tool_calls.length, 1);
  const call = msg.tool_calls[0];
  assert.match(call.id, /^call_/);
  assert.equal(call.type, "function");
  assert.equal(call.function.name, "get_weather");
  assert.equal(typeof call.function.arguments, "string");  // whatever JSON the model wrote, as a string
  // The forced call's opening is prefilled; the model may end the arguments at once (the demo model does), so
  // only the accounting is checked here, not how much it wrote.
  assert.ok(first.usage.prompt_tokens > 0);
  assert.equal(first.usage.total_tokens, first.usage.prompt_tokens + first.usage.completion_tokens);

  // Streamed, the same forced call arrives as a tool-call header and argument deltas that add up.
  const stream = await client.chat.completions.create({
    model: "any", messages, tools: [weatherTool], max_tokens: 12, temperature: 0, stream: true,
    tool_choice: { type: "function", function: { name: "get_weather" } },
  });
  let name = "";
  let args = "";
  for await (const chunk of stream) {
    for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
      assert.equal(tc.index, 0);
      name += tc.function?.name ?? "";
      args += tc.function?.arguments ?? "";
    }
  }
  assert.equal(name, "get_weather");
  assert.equal(args, call.function.arguments, "greedy: streamed arguments equal the whole answer's");

  // The round trip: the assistant's call and the tool's output are rendered in DeepSeek's format.
  const followUp = [...messages, msg, { role: "tool", tool_call_id: call.id, content: '{"temp_c": 21}' }];
  const second = await client.chat.completions.create({
    model: "any", messages: followUp, tools: [weatherTool], max_tokens: 8, temperature: 0,
  });
  assert.equal(typeof second.choices[0].message.content, "string");
  assert.ok(second.usage.prompt_tokens > first.usage.prompt_tokens + 5,
            "the follow-up prompt holds the call and the tool output");
  assert.ok(second.usage.prompt_tokens_details.cached_tokens > 0, "the shared conversation prefix is cached");
});

test("errors are OpenAI error objects with the right status", async () => {
  await assert.rejects(
    client.completions.create({ model: "any", prompt: "x", temperature: 7 }),
    (e) => e.status === 400 && e.error?.param === "temperature" && /expected a value in \[0, 2\]/.test(e.message));
  await assert.rejects(
    client.chat.completions.create({ model: "any", messages: [] }),
    (e) => e.status === 400 && e.error?.param === "messages" && e.error?.type === "invalid_request_error");
  await assert.rejects(
    client.chat.completions.create({ model: "any", messages: [{ role: "user", content: "x" }], tools: [weatherTool],
                                     tool_choice: { type: "function", function: { name: "nope" } } }),
    (e) => e.status === 400 && /found 'nope'/.test(e.message));
  const res = await fetch(`${daemon.base}/v1/completions`, { method: "POST", body: "{not json" });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.ok(body.error.message.includes("expected JSON"));
  assert.ok("param" in body.error && "code" in body.error && "type" in body.error);
});

// llama.vscode (src/llama-server.ts) posts exactly this to /infill.
function vscodeInfill(prefix, suffix, prompt, n_predict, extra = []) {
  return {
    input_prefix: prefix, input_suffix: suffix, input_extra: extra, prompt, n_predict,
    top_k: 40, top_p: 0.99, stream: false, samplers: ["top_k", "top_p", "infill"], cache_prompt: true,
    t_max_prompt_ms: 500, t_max_predict_ms: 1000,
  };
}

test("/infill with llama.vscode's request shape returns llama.cpp's response fields", async () => {
  const extra = [{ text: "def sub(a, b):\n    return a - b\n", time: 1732000000, filename: "util.py" }];
  // Cache warm-up first, as llama.vscode does on file switches: n_predict 0 shows nothing.
  const warm = await fetch(`${daemon.base}/infill`, {
    method: "POST", body: JSON.stringify({ ...vscodeInfill("", "", "", 0, extra), samplers: [], t_max_predict_ms: 1 }),
  });
  assert.equal(warm.status, 200);
  assert.equal((await warm.json()).content, "");

  const body = vscodeInfill("def add(a, b):\n", "\n\nprint(add(1, 2))\n", "    return", 16, extra);
  const res = await fetch(`${daemon.base}/infill`, { method: "POST", body: JSON.stringify(body),
                                                   headers: { "Content-Type": "application/json" } });
  assert.equal(res.status, 200);
  const data = await res.json();
  assert.equal(typeof data.content, "string");
  assert.equal(data.stop, true);
  assert.ok(data.tokens_predicted >= 1 && data.tokens_predicted <= 16);
  assert.ok(data.tokens_cached > 0, "the warm-up's extra context is a cached prefix");
  for (const k of ["prompt_n", "prompt_ms", "predicted_n", "predicted_ms", "predicted_per_second"])
    assert.equal(typeof data.timings[k], "number", k);
  assert.equal(data.timings.predicted_n, data.tokens_predicted);
  assert.equal(data.truncated, false);
});

// Far more tokens than the engine makes in the milliseconds before a test disconnects, within the context.
async function longMaxTokens() {
  const { data } = await client.models.list();
  return Math.min(50000, (data[0].max_model_len ?? 50064) - 64);
}

test("a client that disconnects mid-stream cancels its generation and frees its cache (in /metrics)", async () => {
  const before = await metrics(daemon.base);
  const key = 'latent_requests_cancelled_total{reason="client_disconnect"}';
  const maxTokens = await longMaxTokens();
  const abort = new AbortController();
  const res = await fetch(`${daemon.base}/v1/completions`, {
    method: "POST", signal: abort.signal,
    body: JSON.stringify({ model: "any", prompt: "while True:\n", max_tokens: maxTokens, temperature: 1, stream: true,
                          ignore_eos: true }),  // vLLM's extension: no early end-of-sequence
  });
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const reader = res.body.getReader();
  const { value } = await reader.read();  // the first chunk: generation is running
  assert.ok(new TextDecoder().decode(value).startsWith("data: "));
  abort.abort();

  const after = await metricsUntil(daemon.base,
    (m) => m[key] === (before[key] ?? 0) + 1 && m.latent_http_generations_in_flight === 0,
    'the disconnect to cancel the generation');
  const generated = after.latent_completion_tokens_total - before.latent_completion_tokens_total;
  assert.equal(after[key], (before[key] ?? 0) + 1,
               `one generation cancelled by the disconnect (in flight ${after.latent_http_generations_in_flight}, ` +
               `${generated} tokens generated)`);
  assert.equal(after.latent_http_generations_in_flight, 0);
  assert.equal(after['latent_kv_cache_blocks{state="requests"}'], 0, "no cache blocks held by requests");
  // It stopped early: far fewer tokens than asked for were generated.
  assert.ok(generated < maxTokens, `generated ${generated} of ${maxTokens} tokens despite the disconnect`);
});

test("/infill streams llama.cpp chunks: content pieces, then the final object with stop: true", async () => {
  const body = { ...vscodeInfill("x = [", "]\n", "", 12), stream: true, temperature: 0 };
  const res = await fetch(`${daemon.base}/infill`, { method: "POST", body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const events = (await res.text()).split("\n\n").filter((e) => e).map((e) => {
    assert.ok(e.startsWith("data: "), e);
    return JSON.parse(e.slice(6));
  });
  const last = events.at(-1);
  assert.equal(last.stop, true);
  assert.ok(events.slice(0, -1).every((e) => e.stop === false && typeof e.content === "string"));
  const whole = await (await fetch(`${daemon.base}/infill`, {
    method: "POST", body: JSON.stringify({ ...body, stream: false }) })).json();
  assert.equal(events.slice(0, -1).map((e) => e.content).join(""), whole.content, "greedy: same text both ways");
  assert.equal(last.tokens_predicted, whole.tokens_predicted);
});

test("a client that disconnects while waiting for a whole (non-streamed) answer cancels it too", async () => {
  const key = 'latent_requests_cancelled_total{reason="client_disconnect"}';
  const before = await metrics(daemon.base);
  const abort = new AbortController();
  const pending = fetch(`${daemon.base}/v1/completions`, {
    method: "POST", signal: abort.signal,
    body: JSON.stringify({ model: "any", prompt: "for i in range(10):", max_tokens: await longMaxTokens(),
                           ignore_eos: true }),
  });
  // Abort only once the server runs the generation (a request aborted before it arrives cancels nothing).
  await metricsUntil(daemon.base, (m) => m.latent_http_generations_in_flight >= 1, 'the generation to start');
  abort.abort();
  await pending.then(
    (res) => assert.fail(`expected the request to be aborted, got HTTP ${res.status}; latentd log:\n${daemon.log()}`),
    (e) => assert.equal(e.name, "AbortError"));
  const after = await metricsUntil(daemon.base,
    (m) => m[key] === (before[key] ?? 0) + 1 && m.latent_http_generations_in_flight === 0,
    'the disconnect to cancel the generation');
  assert.equal(after[key], (before[key] ?? 0) + 1);
  assert.equal(after.latent_http_generations_in_flight, 0);
  assert.equal(after['latent_kv_cache_blocks{state="requests"}'], 0);
});

test("request bodies over the limit are refused with 413", async () => {
  // A raw socket: the server answers as soon as it reads the Content-Length, before the body has been sent
  // (fetch would fail with EPIPE while still writing it).
  const { port } = new URL(daemon.base);
  const reply = await new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), "127.0.0.1", () => {
      sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
                 `Content-Length: ${9 << 20}\r\n\r\n{"prompt": "`);
    });
    let data = "";
    sock.on("data", (d) => { data += d; });
    sock.on("close", () => resolve(data));
    sock.on("error", (e) => (data ? resolve(data) : reject(e)));
  });
  assert.match(reply, /^HTTP\/1\.1 413 /);
  const body = JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4));
  assert.match(body.error.message, /request body over \d+ bytes/);
});

test("/metrics is Prometheus text with request, token, latency and cache series", async () => {
  const res = await fetch(`${daemon.base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  for (const name of ["latent_http_requests_total", "latent_time_to_first_token_seconds",
                      "latent_time_per_output_token_seconds", "latent_prefix_cache_hit_rate",
                      "latent_draft_acceptance_rate", "latent_kv_cache_blocks"])
    assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), name);
  const m = await metrics(daemon.base);
  assert.ok(m['latent_http_requests_total{endpoint="/v1/completions",status="200"}'] >= 4);
  assert.ok(m['latent_http_requests_total{endpoint="/v1/completions",status="400"}'] >= 2);
  assert.ok(m.latent_time_to_first_token_seconds_count >= 4);
  assert.ok(m.latent_prefix_cache_hit_rate > 0 && m.latent_prefix_cache_hit_rate < 1);
});

test("--spec mtp: drafts are counted in usage and /metrics, and greedy output is unchanged", async () => {
  const req = { model: "any", prompt: "def fib(n):\n", max_tokens: 24, temperature: 0, ignore_eos: true };
  const plain = await client.completions.create(req);
  const d = await startDaemon(["--spec", "mtp"]);
  try {
    const spec = new OpenAI({ baseURL: `${d.base}/v1`, apiKey: "x", maxRetries: 0 });
    const r = await spec.completions.create(req);
    assert.equal(r.choices[0].text, plain.choices[0].text, "speculative decoding must not change greedy output");
    const det = r.usage.completion_tokens_details;
    assert.ok(det.accepted_prediction_tokens + det.rejected_prediction_tokens > 0, JSON.stringify(r.usage));
    const m = await metrics(d.base);
    assert.equal(m.latent_draft_tokens_total, det.accepted_prediction_tokens + det.rejected_prediction_tokens);
    assert.equal(m.latent_draft_tokens_accepted_total, det.accepted_prediction_tokens);
    assert.ok(m.latent_draft_acceptance_rate >= 0 && m.latent_draft_acceptance_rate <= 1);
  } finally {
    await stopDaemon(d);
  }
});

test("with --token-file the API needs the bearer token (the WebSocket's rule)", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "latent-openai-"));
  const tokenFile = path.join(dir, "token");
  fs.writeFileSync(tokenFile, "s3cret\n");
  const d = await startDaemon(["--token-file", tokenFile]);
  try {
    const wrong = new OpenAI({ baseURL: `${d.base}/v1`, apiKey: "wrong", maxRetries: 0 });
    await assert.rejects(wrong.models.list(), (e) => e.status === 401);
    const right = new OpenAI({ baseURL: `${d.base}/v1`, apiKey: "s3cret", maxRetries: 0 });
    const r = await right.completions.create({ model: "any", prompt: "x = ", max_tokens: 2 });
    assert.equal(r.usage.completion_tokens >= 1, true);
    assert.equal((await fetch(`${d.base}/metrics`)).status, 401);
    assert.equal((await fetch(`${d.base}/health`)).status, 200);
  } finally {
    await stopDaemon(d);
  }
});

// In-process ranks, then (when scripts/setup installed OpenMPI) mpirun -np 2; as root mpirun needs both allow
// variables.
function rankLaunchers() {
  const launchers = [null];
  if (fs.existsSync("/usr/bin/mpirun")) {
    launchers.push({ cmd: "/usr/bin/mpirun", args: ["-np", "2", "--oversubscribe"],
                     env: { OMPI_ALLOW_RUN_AS_ROOT: "1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1",
                            OMPI_MCA_btl: "self,vader,tcp", OMPI_MCA_btl_tcp_if_include: "lo" } });
  }
  return launchers;
}

test("latentd --tp 2 --ep 2, --pp 2 and --dp-attention (in-process ranks, then mpirun -np 2): greedy output equals one rank's", async () => {
  const req = { model: "any", prompt: "def fib(n):\n", max_tokens: 12, temperature: 0 };
  const one = (await client.completions.create(req)).choices[0].text;
  for (const layout of [["--tp", "2", "--ep", "2"], ["--pp", "2"], ["--tp", "2", "--ep", "2", "--dp-attention"]]) {
    for (const launcher of rankLaunchers()) {
      const d = await startDaemon(layout, launcher);
      try {
        const c = new OpenAI({ baseURL: `${d.base}/v1`, apiKey: "unused-on-loopback", maxRetries: 0 });
        const r = await c.completions.create(req);
        assert.equal(r.choices[0].text, one, `${layout.join(" ")}, ${launcher ? "mpirun" : "in-process"}: greedy output changed`);
      } finally {
        await stopDaemon(d);
      }
    }
  }
});

// Rank 1 fails on its second step (LATENT_TEST_RANK_FAIL, the engine's test hook): the daemon does not go on
// serving errors but stops, non-zero, with a log line naming rank 1. The test waits for the process to exit.
test("latentd --tp 2: a rank that dies stops the service with an error naming it (in-process and mpirun)", async () => {
  for (const launcher of rankLaunchers()) {
    const d = await startDaemon(["--tp", "2", "--ep", "2", "--no-time-sizing"], launcher,
                                { LATENT_TEST_RANK_FAIL: "1:2" });
    const exited = new Promise((resolve) => {
      d.proc.removeAllListeners("exit");
      d.proc.on("exit", (code, signal) => resolve({ code, signal }));
    });
    let gone = false;
    exited.then(() => { gone = true; });
    const c = new OpenAI({ baseURL: `${d.base}/v1`, apiKey: "unused-on-loopback", maxRetries: 0 });
    // Each request runs at least one forward (a sampled end of text may end one after its first): by the
    // second request rank 1 has met its second step.
    let failed = 0;
    for (let i = 0; !gone && i < 10; i++) {
      try {
        await c.completions.create({ model: "any", prompt: `def f${i}(x):\n`, max_tokens: 8, temperature: 0 });
      } catch {
        failed++;
      }
    }
    assert.ok(failed >= 1, `no request failed:\n${d.log()}`);
    const { code, signal } = await exited;
    const who = launcher ? "mpirun" : "in-process";
    assert.ok(code !== 0 || signal !== null, `${who}: latentd exited cleanly after losing a rank:\n${d.log()}`);
    assert.match(d.log(), /rank 1 .*LATENT_TEST_RANK_FAIL: rank 1 fails at step 2/, `${who}:\n${d.log()}`);
    if (!launcher) assert.match(d.log(), /latentd stops/, d.log());
  }
});

// The syntax check on /infill (Latent's "language" field): the same greedy completion with the check off and
// on. What is shown with it is the model's own text cut back (plus, at most, closing quotes or brackets), it
// acts on at least one of these function starts (the demo model loops and writes endless docstrings; random
// weights write noise), and /metrics counts every verdict.
test("/infill with a language: the syntax check cuts back, refuses or keeps, and counts in /metrics", async () => {
  const cases = [
    ["import os\n\n\ndef list_python_files(root):\n", "\n\ndef main():\n    print(list_python_files('.'))\n", "python"],
    ["class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n", "\n    def pop(self):\n        return self.items.pop()\n", "python"],
    ["def is_prime(n):\n", "\n\nprint(is_prime(7))\n", "python"],
    ["for i, line in enumerate(", "):\n    print(i, line)\n", "python"],
    ["function add(a, b) {\n", "}\n\nmodule.exports = { add };\n", "javascript"],
  ];
  const key = (a) => `latent_syntax_checks_total{action="${a}"}`;
  const actions = ["kept", "cut", "refused", "unchecked"];
  const before = await metrics(daemon.base);
  let acted = 0;
  for (const [prefix, suffix, language] of cases) {
    const body = { input_prefix: prefix, input_suffix: suffix, prompt: "", n_predict: 48, temperature: 0, language };
    const post = async (extra) => (await fetch(`${daemon.base}/infill`, {
      method: "POST", body: JSON.stringify({ ...body, ...extra }) })).json();
    const off = await post({ syntax_check: "off" });
    const on = await post({ syntax_check: "trim" });
    assert.equal(off.latent_syntax, undefined, "off: no verdict");
    const v = on.latent_syntax;
    assert.ok(["kept", "cut", "refused"].includes(v.action), JSON.stringify(v));
    assert.ok(on.content.endsWith(v.closer), JSON.stringify(on));
    const own = on.content.slice(0, on.content.length - v.closer.length);
    assert.ok(off.content.startsWith(own), `checked text is not the model's own:\n${JSON.stringify(own)}\n${JSON.stringify(off.content)}`);
    if (v.action === "refused") assert.equal(on.content, "");
    assert.ok(v.errors_with <= v.errors_without, JSON.stringify(v));
    if (v.action !== "kept") acted++;
  }
  assert.ok(acted > 0, "the check acted on none of the completions");
  const after = await metrics(daemon.base);
  const counted = actions.reduce((n, a) => n + (after[key(a)] ?? 0) - (before[key(a)] ?? 0), 0);
  assert.equal(counted, cases.length);
  const bad = await fetch(`${daemon.base}/infill`, {
    method: "POST", body: JSON.stringify({ input_prefix: "x", input_suffix: "", syntax_check: "on" }) });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /syntax_check: expected off, trim or rank, found 'on'/);
});
