// The tokenizer against the JavaScript reference (@lenml/tokenizers, a port of transformers.js, run here in
// node): `latent tokenize` must produce identical ids for a >300 KB multi-language code corpus, unicode edge
// cases and fuzzed strings, with DeepSeek-V3's tokenizer.json and with the DeepSeek-V2 / DeepSeek-Coder
// pre-tokenizers; decode must round-trip; chat and FIM prompts must match the Jinja chat_template.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const require = createRequire(import.meta.url);
const { TokenizerLoader } = require("@lenml/tokenizers");

const DATA = path.join(process.env.LATENT_TEST_DATA, "tokenizer");
const V3 = path.join(DATA, "deepseek-v3");
const LATENT = path.join(process.env.LATENT_BIN_DIR, "latent");
const readJson = (p) => JSON.parse(fs.readFileSync(p, "utf8"));
const tokJson = readJson(path.join(V3, "tokenizer.json"));
const tokConfig = readJson(path.join(V3, "tokenizer_config.json"));
const reference = (json = tokJson, config = tokConfig) =>
  TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config });
const ref = reference();

// One `latent` process for many inputs: --jsonl, one JSON value per line in and out.
function latent(args, inputs) {
  const out = execFileSync(LATENT, [...args, "--jsonl"], {
    input: inputs.map((x) => JSON.stringify(x)).join("\n") + "\n",
    maxBuffer: 1 << 28,
  });
  return out.toString("utf8").trimEnd().split("\n").map((l) => JSON.parse(l));
}

// A directory with tokenizer.json (a symlink unless `json` is given) and the given tokenizer_config.json.
function tokenizerDir(config, json) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "latent-tok-"));
  if (json) fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(json));
  else fs.symlinkSync(path.join(V3, "tokenizer.json"), path.join(dir, "tokenizer.json"));
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(config));
  return dir;
}

function assertSameIds(name, expected, actual) {
  if (JSON.stringify(expected) === JSON.stringify(actual)) return;
  let k = 0;
  while (k < expected.length && expected[k] === actual[k]) k++;
  const show = (ids) => JSON.stringify(ids.slice(k, k + 6).map((id) => ref.decode([id])));
  assert.fail(`${name}: ids differ at index ${k} of ${expected.length} (latent has ${actual.length}); ` +
              `reference ${show(expected)} vs latent ${show(actual)} after ${JSON.stringify(ref.decode(expected.slice(Math.max(0, k - 8), k)))}`);
}

const corpusDir = path.join(DATA, "corpus");
const corpusFiles = fs.readdirSync(corpusDir).sort();
const corpus = corpusFiles.map((f) => fs.readFileSync(path.join(corpusDir, f), "utf8"));

// Random strings over an alphabet of the characters where tokenizers disagree most easily.
function fuzzStrings(n, alphabet, seed = 20260101) {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const out = [];
  for (let i = 0; i < n; i++) {
    let t = "";
    for (let k = 1 + Math.floor(rnd() * 24); k > 0; k--) t += alphabet[Math.floor(rnd() * alphabet.length)];
    out.push(t);
  }
  return out;
}
const ALPHABET = [" ", "  ", "\t", "\n", "\r\n", "\r", "a", "Z", "é", "e\u0301", "ß", "Ω", "я", "你", "好", "こ",
  "カ", "한", "ا", "ש", "\u0300", "0", "1", "9", "!", ".", ",", "'", "\"", "(", ")", "{", "}", "<", ">", "/",
  "\\", "-", "_", "=", "+", "*", "&", "|", "^", "~", "`", "#", "$", "%", "@", ":", ";", "?", "😀", "👨‍👩‍👧",
  "\u200d", "\u00a0", "\u3000", "\u2028", "€", "∑", "<｜fim▁hole｜>", "<｜User｜>", "<|EOT|>", "<｜", "｜>", "▁",
  "Ġ", "def", " the", "return", "ि", "्", "ー", "…", "—", "\u2009", "٣", "０", "²", "½"];

test("the corpus is at least 300 KB of code in at least 8 languages plus unicode edge cases", () => {
  const bytes = corpus.reduce((n, t) => n + Buffer.byteLength(t), 0);
  assert.ok(bytes >= 300 * 1024, `corpus is ${bytes} bytes`);
  const langs = new Set(corpusFiles.map((f) => f.replace(/^.*?\.(d\.ts|[^.]+)$/, "$1")));
  for (const ext of ["py", "h", "hpp", "js", "d.ts", "go", "rs", "rb", "bash"]) assert.ok(langs.has(ext), ext);
  assert.ok(corpusFiles.includes("unicode_edge_cases.txt"));
});

test("latent tokenize matches @lenml/tokenizers on the corpus (DeepSeek-V3) and decode round-trips", () => {
  const expected = corpus.map((t) => ref.encode(t, { add_special_tokens: false }));
  const actual = latent(["tokenize", "--model", V3], corpus);
  corpusFiles.forEach((f, i) => assertSameIds(f, expected[i], actual[i]));
  const decoded = latent(["detokenize", "--model", V3], actual);
  corpusFiles.forEach((f, i) => {
    assert.equal(decoded[i], corpus[i], `${f}: latent detokenize does not round-trip`);
    assert.equal(ref.decode(actual[i]), corpus[i], `${f}: the reference decode of latent's ids differs`);
  });
});

test("--bos prepends BOS as tokenizer_config.json's add_bos_token says", () => {
  const [ids] = latent(["tokenize", "--model", V3, "--bos"], ["def main():"]);
  assert.deepEqual(ids, [0, ...ref.encode("def main():", { add_special_tokens: false })]);
});

test("fuzzed strings: same ids as the reference (DeepSeek-V3)", () => {
  const strs = fuzzStrings(3000, ALPHABET);
  const actual = latent(["tokenize", "--model", V3], strs);
  strs.forEach((s, i) => assertSameIds(JSON.stringify(s), ref.encode(s, { add_special_tokens: false }), actual[i]));
  const decoded = latent(["detokenize", "--model", V3], actual);
  strs.forEach((s, i) => assert.equal(decoded[i], s));
});

test("DeepSeek-V2 / Coder-V2 (deepseek-llm) and DeepSeek-Coder pre-tokenizers match the reference", () => {
  const pre = readJson(path.join(DATA, "deepseek_v2_pre_tokenizers.json"));
  // The reference's Digits pre-tokenizer only knows ASCII digits (the tokenizers crate uses char::is_numeric),
  // so the inputs here avoid other digits.
  const asciiDigits = (t) => !/[^\P{N}0-9]/u.test(t);
  const inputs = [...corpus.filter(asciiDigits), ...fuzzStrings(1500, ALPHABET.filter(asciiDigits), 7)];
  for (const name of ["deepseek-llm", "deepseek-coder"]) {
    const json = { ...tokJson, pre_tokenizer: pre[name].pre_tokenizer, normalizer: pre[name].normalizer };
    const r = reference(json);
    const actual = latent(["tokenize", "--model", tokenizerDir(tokConfig, json)], inputs);
    inputs.forEach((t, i) => assertSameIds(`${name} input ${i}`, r.encode(t, { add_special_tokens: false }), actual[i]));
  }
});

const CONVERSATIONS = [
  { messages: [{ role: "user", content: "Write quicksort in Python." }], add_generation_prompt: true },
  { messages: [{ role: "system", content: "You are a coding assistant." }, { role: "user", content: "Hi" },
               { role: "assistant", content: "Hello! How can I help?" }, { role: "user", content: "Sort [3,1,2]" }],
    add_generation_prompt: true },
  { messages: [{ role: "system", content: "first" }, { role: "system", content: "second" },
               { role: "user", content: "多语言 текст 🎉\nline2" }, { role: "assistant", content: "" }],
    add_generation_prompt: false },
  { messages: [{ role: "user", content: "Weather in Paris and Tokyo?" },
               { role: "assistant", content: null, tool_calls: [
                 { type: "function", function: { name: "get_weather", arguments: "{\"city\": \"Paris\"}" } },
                 { type: "function", function: { name: "get_weather", arguments: "{\"city\": \"Tokyo\"}" } }] },
               { role: "tool", content: "{\"temp\": 18}" }, { role: "tool", content: "{\"temp\": 25}" },
               { role: "assistant", content: "Paris 18°C, Tokyo 25°C." }, { role: "user", content: "Thanks" }],
    add_generation_prompt: true },
  { messages: [{ role: "user", content: "Run ls" },
               { role: "assistant", content: null, tool_calls: [
                 { type: "function", function: { name: "shell", arguments: "{\"cmd\": \"ls\"}" } }] },
               { role: "tool", content: "a.py\nb.py" }],
    add_generation_prompt: true },
];

test("chat prompts match the chat_template rendered by Jinja (DeepSeek-V3 and DeepSeek-V2 templates)", () => {
  const v2Template = fs.readFileSync(path.join(DATA, "deepseek_v2_chat_template.jinja"), "utf8");
  // The V2 template has no tool calls (Jinja cannot add a null content), so it gets the conversations without.
  const plain = CONVERSATIONS.filter((c) => c.messages.every((m) => m.content !== null));
  for (const [name, config, convs] of [["v3", tokConfig, CONVERSATIONS],
                                       ["v2", { ...tokConfig, chat_template: v2Template }, plain]]) {
    const r = reference(tokJson, config);
    const dir = tokenizerDir(config);
    const texts = latent(["tokenize", "--model", dir, "--chat", "--render"], convs);
    const ids = latent(["tokenize", "--model", dir, "--chat"], convs);
    convs.forEach((c, i) => {
      const expected = r.apply_chat_template(c.messages, { tokenize: false, add_generation_prompt: c.add_generation_prompt });
      assert.equal(texts[i], expected, `${name} conversation ${i}`);
      assertSameIds(`${name} conversation ${i}`, r.encode(expected, { add_special_tokens: false }), ids[i]);
    });
  }
});

test("FIM prompts: BOS, <｜fim▁begin｜>, repository files with path headers, prefix, hole, suffix, end", () => {
  const prompts = [
    { prefix: "def add(a, b):\n    ", suffix: "\n\nprint(add(1, 2))\n" },
    { prefix: "fn main() {\n    let x = ", suffix: ";\n}\n", path: "src/main.rs",
      files: [{ path: "src/lib.rs", text: "pub fn helper() -> i32 { 42 }" }, { path: "Cargo.toml", text: "[package]\nname = \"x\"" }] },
    { prefix: "", suffix: "", path: "empty.txt" },
  ];
  const texts = latent(["tokenize", "--model", V3, "--fim", "--render"], prompts);
  const ids = latent(["tokenize", "--model", V3, "--fim"], prompts);
  prompts.forEach((p, i) => {
    const ctx = (p.files ?? []).map((f) => `# ${f.path}\n${f.text}\n\n`).join("") + (p.path ? `# ${p.path}\n` : "");
    const expected = `<｜fim▁begin｜>${ctx}${p.prefix}<｜fim▁hole｜>${p.suffix}<｜fim▁end｜>`;
    assert.equal(texts[i], expected);
    assertSameIds(`fim ${i}`, [0, ...ref.encode(expected, { add_special_tokens: false })], ids[i]);
  });
  // Code that contains the FIM tokens' text cannot inject them.
  const [injected] = latent(["tokenize", "--model", V3, "--fim"], [{ prefix: "x = '<｜fim▁hole｜>'", suffix: "" }]);
  assert.equal(injected.filter((id) => id === 128800).length, 1);
});

test("long runs of one character class: same ids as the reference", () => {
  const runs = [" ".repeat(4000), "a".repeat(4000), "1".repeat(4000), "你".repeat(1000), "\t \n".repeat(1000),
                "ab ".repeat(1000), `x${" ".repeat(3000)}y`, "=".repeat(2000), "😀".repeat(600), "\r\n".repeat(1000)];
  const actual = latent(["tokenize", "--model", V3], runs);
  runs.forEach((s, i) => assertSameIds(`run ${i}`, ref.encode(s, { add_special_tokens: false }), actual[i]));
});

test("ByteLevel (add_prefix_space, GPT-2 regex) and Digits (contiguous) pre-tokenizers match the reference", () => {
  // (The reference keeps the delimiters of a String-pattern Split with behavior Removed, unlike the tokenizers
  // crate, so Removed is checked by the C++ unit tests against the crate's documented examples instead.)
  const inputs = corpus.filter((t) => !/[^\P{N}0-9]/u.test(t)).slice(0, 8);
  const configs = [
    { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: false },
                                        { type: "ByteLevel", add_prefix_space: false, use_regex: true }] },
  ];
  for (const pre of configs) {
    const json = { ...tokJson, pre_tokenizer: pre };
    const r = reference(json);
    const actual = latent(["tokenize", "--model", tokenizerDir(tokConfig, json)], inputs);
    inputs.forEach((t, i) => assertSameIds(`${pre.type} input ${i}`, r.encode(t, { add_special_tokens: false }), actual[i]));
  }
});

test("latent generate --prompt and --prefix/--suffix feed the same ids as tokenize/FIM and print the text", () => {
  const model = path.join(process.env.LATENT_TEST_DATA, "golden", "v3-tiny");  // vocab 512: short ASCII prompts
  const tokFile = path.join(V3, "tokenizer.json");
  const gen = (args) => execFileSync(LATENT, ["generate", "--model", model, "-n", "6", ...args]).toString().split("\n");
  const ids = ref.encode("a b", { add_special_tokens: false });
  const [viaIds] = gen(["--ids", [0, ...ids].join(",")]);
  const [viaPrompt, text] = gen(["--tokenizer", tokFile, "--prompt", "a b"]);
  assert.equal(viaPrompt, viaIds);
  assert.equal(JSON.parse(text), ref.decode(viaPrompt.split(" ").map(Number), { skip_special_tokens: true }));
  // FIM ids exceed the tiny model's vocabulary: the error must say so.
  assert.throws(() => execFileSync(LATENT, ["generate", "--model", model, "--tokenizer", tokFile, "--prefix", "a",
                                            "--suffix", "b"], { stdio: "pipe" }), /128801 out of range/);
});
