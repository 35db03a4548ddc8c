// latent generate: prefill a prompt, then decode N tokens one at a time through the latent KV cache.
// Sampling: greedy (default) or temperature + top-p with a seed. The prompt comes from prompt_ids();
// other front ends (text prompts, FIM prefix/suffix, speculative decoding) extend the option list.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/deepseek_model.h"
#include "engine/ranked_model.h"
#include "engine/npy.h"
#include "engine/scheduler.h"
#include "engine/tokenizer/prompt_format.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/args.h"
#include "server/cli/command.h"

namespace latent::cli {
namespace {

const std::vector<OptionSpec> kSpecs = with_parallel_options({
    {"model", "DIR", "checkpoint directory (config.json + safetensors)", ""},
    {"ids", "LIST", "comma-separated prompt token ids, e.g. 1,2,3", ""},
    {"prompt", "TEXT", "prompt text, encoded with the checkpoint's tokenizer.json (BOS as tokenizer_config.json "
                       "says); the generated text follows the ids as a JSON string", ""},
    {"prefix", "TEXT", "fill-in-the-middle prompt: the code before the cursor (with --suffix)", ""},
    {"suffix", "TEXT", "fill-in-the-middle prompt: the code after the cursor", ""},
    {"tokenizer", "FILE", "tokenizer.json for --prompt/--prefix/--suffix (default: DIR/tokenizer.json)", ""},
    {"n", "N", "tokens to generate", "16"},
    {"greedy", "", "pick the most likely token (the default unless --temperature is given)", ""},
    {"temperature", "T", "sample from softmax(logits / T); 0 = greedy", ""},
    {"top-p", "P", "nucleus sampling: keep the smallest set of tokens with probability >= P", "1.0"},
    {"seed", "S", "random seed for sampling", "0"},
    {"stop-eos", "", "stop after the config's eos_token_id", ""},
    {"dump-logits", "FILE.npy", "write each decode step's logits [N, vocab]: row j = logits after feeding "
                                "generated token j (the golden decode_logits layout)", ""},
    {"json", "", "print one JSON object on the last line: ids, prompt_tokens, prefill_ms, decode_ms, decode_tok_s", ""},
    {"spec", "MODE", "run through the Scheduler with speculative decoding: none|mtp|ngram|auto (JSON adds "
                     "drafted/accepted)", ""},
    {"spec-depth", "K", "with --spec mtp|auto: chain of K MTP drafts per step", "1"},
    {"context-ids", "LIST", "with --spec ngram|auto: extra token ids that n-gram drafts may copy from", ""},
    {"help", "", "show this help", ""},
});

// --prompt, --prefix/--suffix: text prompts through the checkpoint's tokenizer (loaded once).
bool has_text_prompt(const Args& args) {
  return args.has("prompt") || args.has("prefix") || args.has("suffix");
}

Result<const Tokenizer*> prompt_tokenizer(const Args& args) {
  static std::optional<Tokenizer> tok;
  if (!tok) {
    auto t = args.has("tokenizer") ? Tokenizer::load_file(args.get("tokenizer")) : Tokenizer::load(args.get("model"));
    if (!t.ok()) return t.error();
    tok.emplace(std::move(t).value());
  }
  return &*tok;
}

Result<std::vector<int32_t>> text_prompt_ids(const Args& args) {
  if (args.has("ids"))
    return make_error(ErrorCode::kInvalidArgument, "expected --ids or a text prompt (--prompt, --prefix/--suffix), found both");
  if (args.has("prompt") && (args.has("prefix") || args.has("suffix")))
    return make_error(ErrorCode::kInvalidArgument, "expected --prompt or --prefix/--suffix, found both");
  LATENT_ASSIGN_OR_RETURN(const Tokenizer* tok, prompt_tokenizer(args));
  if (args.has("prompt")) return tok->encode(args.get("prompt"), /*add_special_tokens=*/true);
  FimPrompt fim;
  fim.prefix = args.get("prefix");
  fim.suffix = args.get("suffix");
  return encode_fim(*tok, fim);
}

// After the ids line: the generated text as one JSON string (special tokens dropped).
void print_generated_text(const Args& args, const std::vector<int32_t>& out) {
  auto tok = prompt_tokenizer(args);
  if (tok.ok()) std::printf("%s\n", nlohmann::json((*tok)->decode(out, /*skip_special_tokens=*/true)).dump().c_str());
}

// The prompt's token ids from the options (today --ids).
Result<std::vector<int32_t>> prompt_ids(const Args& args) {
  if (has_text_prompt(args)) return text_prompt_ids(args);
  if (!args.has("ids")) return make_error(ErrorCode::kInvalidArgument, "expected --ids");
  return parse_token_ids(args.get("ids"), "ids");
}

struct SamplingParams {
  double temperature = 0;  // 0: greedy
  double top_p = 1.0;
  uint64_t seed = 0;
};

class TokenPicker {
 public:
  explicit TokenPicker(const SamplingParams& p) : p_(p), rng_(p.seed) {}
  int32_t pick(const float* logits, int64_t V) {
    if (p_.temperature <= 0) return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);
    std::vector<int32_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    std::vector<double> prob(static_cast<size_t>(V));
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) {
      prob[i] = std::exp((logits[order[i]] - logits[order[0]]) / p_.temperature);
      sum += prob[i];
    }
    double kept = 0;
    int64_t n = 0;
    while (n < V && (n == 0 || kept < p_.top_p * sum)) kept += prob[n++];
    double u = std::uniform_real_distribution<double>(0, kept)(rng_);
    for (int64_t i = 0; i < n; ++i) {
      if ((u -= prob[i]) <= 0) return order[i];
    }
    return order[n - 1];
  }

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

int fail(const Error& e) {
  std::fprintf(stderr, "latent generate: %s\n", e.to_string().c_str());
  return 1;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The model on the --tp/--ep ranks. On an mpirun rank other than 0, driver() is null: that rank has followed
// rank 0's forwards to the end and the command only reports how that ended.
Result<std::unique_ptr<RankedModel>> load_ranked(const Args& args, const ModelOptions& mopt) {
  LATENT_ASSIGN_OR_RETURN(ParallelOptions parallel, parse_parallel(args));
  return RankedModel::load(args.get("model"), mopt, parallel);
}

int follower_exit(const RankedModel& m) { return m.followed().ok() ? 0 : fail(m.followed().error()); }

// --spec: the same generation through the Scheduler (continuous batching engine), so that speculative decoding
// (MTP and n-gram drafts, verified losslessly) and its statistics can be tried from the command line.
int run_scheduled(const Args& args, const std::vector<int32_t>& ids, int64_t n_gen, const SamplingParams& sp) {
  latent::SpecMode mode;
  if (!parse_spec_mode(args.get("spec"), &mode))
    return fail(make_error(ErrorCode::kInvalidArgument, "--spec: expected none, mtp, ngram or auto, found '" + args.get("spec") + "'"));
  auto depth = args.get_int("spec-depth", 1);
  if (!depth.ok()) return fail(depth.error());
  if (*depth < 1) return fail(make_error(ErrorCode::kInvalidArgument, "--spec-depth: expected >= 1, found " + args.get("spec-depth")));
  if (n_gen < 1) return fail(make_error(ErrorCode::kInvalidArgument, "-n: expected >= 1 with --spec"));
  auto ranked = load_ranked(args, {});
  if (!ranked.ok()) return fail(ranked.error());
  if (!(*ranked)->driver()) return follower_exit(**ranked);
  DeepseekModel* model = (*ranked)->driver();
  auto serving = serve_deepseek(*model);
  auto cache = model->make_cache(KvCache::blocks_needed(static_cast<int64_t>(ids.size()) + n_gen + 64) + 2);
  if (!cache.ok()) return fail(cache.error());
  Scheduler sched(*serving, *cache);
  Request r;
  r.prompt = ids;
  r.stop.max_tokens = static_cast<int>(n_gen);
  if (args.has("stop-eos") && model->config().eos_token_id) r.stop.stop_token_ids = {*model->config().eos_token_id};
  r.sampling.temperature = static_cast<float>(sp.temperature);
  r.sampling.top_p = static_cast<float>(sp.top_p);
  r.sampling.seed = sp.seed;
  r.spec.mode = mode;
  r.spec.mtp_depth = static_cast<int>(*depth);
  if (args.has("context-ids")) {
    auto ctx = parse_token_ids(args.get("context-ids"), "context-ids");
    if (!ctx.ok()) return fail(ctx.error());
    r.context_ids = *ctx;
  }
  std::vector<int32_t> out;
  std::optional<Event> done;
  std::optional<Error> error;
  r.on_event = [&](const Event& e) {
    if (e.kind == Event::Kind::kToken) out.insert(out.end(), e.tokens.begin(), e.tokens.end());
    if (e.kind == Event::Kind::kDone) done = e;
    if (e.kind == Event::Kind::kError) error = e.error;
  };
  auto id = sched.submit(std::move(r));
  if (!id.ok()) return fail(id.error());
  sched.run_until_idle();
  if (error) return fail(*error);
  std::string list, arr;
  for (size_t i = 0; i < out.size(); ++i) {
    list += (i ? " " : "") + std::to_string(out[i]);
    arr += (i ? "," : "") + std::to_string(out[i]);
  }
  std::printf("%s\n", list.c_str());
  if (has_text_prompt(args)) print_generated_text(args, out);
  if (args.has("json") && done) {
    const Usage& u = done->usage;
    const double decode_ms = done->timings.total_ms - done->timings.ttft_ms;
    const double tok_s = decode_ms > 0 ? (static_cast<double>(out.size()) - 1) * 1000.0 / decode_ms : 0.0;
    std::printf("{\"ids\": [%s], \"prompt_tokens\": %d, \"spec\": \"%s\", \"drafted\": %d, \"accepted\": %d, "
                "\"forward_passes\": %lld, \"ttft_ms\": %.3f, \"decode_ms\": %.3f, \"decode_tok_s\": %.3f, "
                "\"finish\": \"%s\"}\n",
                arr.c_str(), u.prompt_tokens, spec_mode_name(mode), u.drafted_tokens, u.accepted_tokens,
                static_cast<long long>(sched.stats().steps), done->timings.ttft_ms, decode_ms, tok_s,
                finish_reason_name(done->finish));
  }
  return 0;
}

int run_generate(int argc, char** argv) {
  const std::string usage =
      "latent generate --model DIR --ids LIST -n N [--greedy | --temperature T --top-p P --seed S]\n"
      "                       [--dump-logits FILE.npy] [--json] [--spec none|mtp|ngram|auto [--spec-depth K]]\n"
      "                       [--device cpu|cuda[:N]|auto] [--tp N --ep M] [--pp P] [--dp-attention]";
  const std::string summary =
      "Prefills the prompt, then generates N tokens one at a time through the latent KV cache and prints\n"
      "their ids (space-separated). Greedy unless --temperature > 0. Does not stop at EOS unless --stop-eos.";
  // Accept -n as --n.
  std::vector<std::string> storage(argv, argv + argc);
  for (auto& a : storage) {
    if (a == "-n") a = "--n";
  }
  std::vector<char*> av;
  for (auto& a : storage) av.push_back(a.data());
  auto args = Args::parse(argc, av.data(), 2, kSpecs);
  if (!args.ok()) {
    std::fprintf(stderr, "latent generate: %s\n\n%s", args.error().message.c_str(),
                 format_help(usage, summary, kSpecs).c_str());
    return 2;
  }
  if (args->has("help")) {
    std::printf("%s", format_help(usage, summary, kSpecs).c_str());
    return 0;
  }
  if (!args->has("model")) {
    std::fprintf(stderr, "latent generate: expected --model\n\n%s", format_help(usage, summary, kSpecs).c_str());
    return 2;
  }
  auto ids = prompt_ids(*args);
  if (!ids.ok()) return fail(ids.error());
  auto n_gen = args->get_int("n", 16);
  auto temperature = args->get_double("temperature", 0.0);
  auto top_p = args->get_double("top-p", 1.0);
  auto seed = args->get_int("seed", 0);
  if (!n_gen.ok()) return fail(n_gen.error());
  if (!temperature.ok()) return fail(temperature.error());
  if (!top_p.ok()) return fail(top_p.error());
  if (!seed.ok()) return fail(seed.error());
  if (*n_gen < 0) return fail(make_error(ErrorCode::kInvalidArgument, "-n: expected >= 0, found " + std::to_string(*n_gen)));
  if (*top_p <= 0 || *top_p > 1) return fail(make_error(ErrorCode::kInvalidArgument, "--top-p: expected (0, 1], found " + args->get("top-p")));
  if (args->has("greedy") && args->has("temperature") && *temperature > 0) {
    return fail(make_error(ErrorCode::kInvalidArgument, "expected --greedy or --temperature, found both"));
  }
  SamplingParams sp{args->has("greedy") ? 0.0 : *temperature, *top_p, static_cast<uint64_t>(*seed)};
  const bool dump = args->has("dump-logits");
  if (args->has("spec")) {
    if (dump) return fail(make_error(ErrorCode::kInvalidArgument, "expected --spec or --dump-logits, found both"));
    return run_scheduled(*args, *ids, *n_gen, sp);
  }

  ModelOptions mopt;
  mopt.load_mtp = false;
  auto ranked = load_ranked(*args, mopt);
  if (!ranked.ok()) return fail(ranked.error());
  if (!(*ranked)->driver()) return follower_exit(**ranked);
  DeepseekModel& m = *(*ranked)->driver();
  const int64_t V = m.config().vocab_size;
  const int64_t L = static_cast<int64_t>(ids->size()), total = L + *n_gen + 1;
  auto cache = m.make_cache(KvCache::blocks_needed(total));
  if (!cache.ok()) return fail(cache.error());
  auto blocks = cache->allocate(KvCache::blocks_needed(total));
  if (!blocks.ok()) return fail(blocks.error());

  TokenPicker picker(sp);
  std::vector<int32_t> out;
  std::vector<float> dumped;
  auto t0 = std::chrono::steady_clock::now();
  SequenceInput in{*ids, 0, *blocks, false};
  auto r = m.forward(std::span<const SequenceInput>(&in, 1), *cache);
  if (!r.ok()) return fail(r.error());
  const double prefill_ms = ms_since(t0);
  int32_t next = picker.pick(r->logits_row(0), V);
  const int64_t eos = args->has("stop-eos") && m.config().eos_token_id ? *m.config().eos_token_id : -1;

  auto t1 = std::chrono::steady_clock::now();
  int64_t decode_steps = 0;
  for (int64_t j = 0; j < *n_gen; ++j) {
    out.push_back(next);
    const bool stop = next == eos;
    if (j + 1 == *n_gen && !dump) break;  // the last token needs no forward unless its logits are dumped
    if (stop && !dump) break;
    std::vector<int32_t> tok = {next};
    SequenceInput step{tok, L + j, *blocks, false};
    auto s = m.forward(std::span<const SequenceInput>(&step, 1), *cache);
    if (!s.ok()) return fail(s.error());
    ++decode_steps;
    if (dump) dumped.insert(dumped.end(), s->logits.begin(), s->logits.end());
    if (stop) break;
    next = picker.pick(s->logits_row(0), V);
  }
  const double decode_ms = ms_since(t1);
  if (dump) {
    Status st = write_npy_f32(args->get("dump-logits"), dumped.data(),
                              {static_cast<int64_t>(dumped.size()) / V, V});
    if (!st.ok()) return fail(st.error());
  }
  std::string list;
  for (size_t i = 0; i < out.size(); ++i) list += (i ? " " : "") + std::to_string(out[i]);
  std::printf("%s\n", list.c_str());
  if (has_text_prompt(*args)) print_generated_text(*args, out);
  if (args->has("json")) {
    std::string arr;
    for (size_t i = 0; i < out.size(); ++i) arr += (i ? "," : "") + std::to_string(out[i]);
    const double tok_s = decode_ms > 0 ? decode_steps * 1000.0 / decode_ms : 0.0;
    std::printf("{\"ids\": [%s], \"prompt_tokens\": %lld, \"prefill_ms\": %.3f, \"decode_ms\": %.3f, "
                "\"decode_tok_s\": %.3f}\n",
                arr.c_str(), static_cast<long long>(L), prefill_ms, decode_ms, tok_s);
  }
  return 0;
}

const CommandRegistration kReg{"generate", "prefill token ids and decode N tokens (greedy or top-p)", run_generate};

}  // namespace
}  // namespace latent::cli
