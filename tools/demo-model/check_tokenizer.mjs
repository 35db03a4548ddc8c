// Validates a demo-model tokenizer.json against the JS reference tokenizer (@lenml/tokenizers, a fork of
// transformers.js): loads it with TokenizerLoader.fromPreTrained and checks that encode() gives exactly the
// ids the Python encoder (bpe.py) produced, and that decode() round-trips.
//   NODE_PATH=deps/node_modules node tools/demo-model/check_tokenizer.mjs <model_dir> <cases.json>
// cases.json: [{"text": "...", "ids": [...]}] (ids without BOS; written by tokenizer_cases.py).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(path.resolve("deps/node_modules/"));
const { TokenizerLoader } = require("@lenml/tokenizers");

const [dir, casesPath] = process.argv.slice(2);
const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
const cases = JSON.parse(fs.readFileSync(casesPath, "utf8"));
let bad = 0, tokens = 0;
for (const [i, c] of cases.entries()) {
  const ids = tok.encode(c.text, { add_special_tokens: false });
  tokens += ids.length;
  const same = ids.length === c.ids.length && ids.every((v, k) => v === c.ids[k]);
  if (!same) {
    bad++;
    const k = ids.findIndex((v, j) => v !== c.ids[j]);
    console.log(`case ${i}: mismatch at token ${k}: js ${JSON.stringify(ids.slice(k, k + 5))} ` +
                `python ${JSON.stringify(c.ids.slice(k, k + 5))}`);
  }
  const back = tok.decode(c.ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  if (back !== c.text) { bad++; console.log(`case ${i}: decode does not round-trip`); }
}
const withBos = tok.encode("x = 1", { add_special_tokens: true });
console.log(`add_special_tokens=true on "x = 1": ${JSON.stringify(withBos)}`);
console.log(`${cases.length} cases, ${tokens} tokens, ${bad} failures`);
process.exit(bad ? 1 : 0);
