// latent logits: one prefill of the given token ids; writes the logits of every position as .npy
// (and, for DeepSeek-V3 checkpoints with an MTP module, the MTP head's draft logits).
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "engine/deepseek_model.h"
#include "engine/ranked_model.h"
#include "engine/npy.h"
#include "server/args.h"
#include "server/cli/command.h"

namespace latent::cli {
namespace {

const std::vector<OptionSpec> kSpecs = with_parallel_options({
    {"model", "DIR", "checkpoint directory (config.json + safetensors)", ""},
    {"ids", "LIST", "comma-separated prompt token ids, e.g. 1,2,3", ""},
    {"out", "FILE.npy", "where to write float32 logits [n, vocab]; row i predicts token i+1", ""},
    {"mtp", "FILE.npy", "also write the MTP head's logits [n-1, vocab]; row i predicts token i+2", ""},
    {"help", "", "show this help", ""},
});

int fail(const Error& e) {
  std::fprintf(stderr, "latent logits: %s\n", e.to_string().c_str());
  return 1;
}

int run_logits(int argc, char** argv) {
  const std::string usage = "latent logits --model DIR --ids 1,2,3 --out FILE.npy [--mtp FILE.npy] [--device cpu|cuda[:N]|auto] [--tp N --ep M] [--pp P] [--dp-attention]";
  const std::string summary =
      "Runs one prefill of the prompt through the model (float32 activations, weights in their stored\n"
      "dtype) and writes the logits of every prompt position. With --mtp, the MTP module (DeepSeek-V3)\n"
      "drafts from each position's final hidden state: row i uses token i+1 and hidden state i.";
  auto args = Args::parse(argc, argv, 2, kSpecs);
  if (!args.ok()) {
    std::fprintf(stderr, "latent logits: %s\n\n%s", args.error().message.c_str(), format_help(usage, summary, kSpecs).c_str());
    return 2;
  }
  if (args->has("help")) {
    std::printf("%s", format_help(usage, summary, kSpecs).c_str());
    return 0;
  }
  for (const char* required : {"model", "ids", "out"}) {
    if (!args->has(required)) {
      std::fprintf(stderr, "latent logits: expected --%s\n\n%s", required, format_help(usage, summary, kSpecs).c_str());
      return 2;
    }
  }
  auto ids = parse_token_ids(args->get("ids"), "ids");
  if (!ids.ok()) return fail(ids.error());
  auto parallel = parse_parallel(*args);
  if (!parallel.ok()) return fail(parallel.error());
  const bool want_mtp = args->has("mtp");
  ModelOptions mopt;
  mopt.load_mtp = want_mtp;
  auto model = RankedModel::load(args->get("model"), mopt, *parallel);
  if (!model.ok()) return fail(model.error());
  if (!(*model)->driver()) return (*model)->followed().ok() ? 0 : fail((*model)->followed().error());  // mpirun rank > 0
  DeepseekModel& m = *(*model)->driver();
  if (want_mtp && !m.has_mtp()) {
    return fail(make_error(ErrorCode::kUnsupported, "--mtp: expected a checkpoint with num_nextn_predict_layers > 0, "
                                                    "found none in " + args->get("model")));
  }
  const int64_t n = static_cast<int64_t>(ids->size());
  auto cache = m.make_cache(KvCache::blocks_needed(n));
  if (!cache.ok()) return fail(cache.error());
  auto blocks = cache->allocate(KvCache::blocks_needed(n));
  if (!blocks.ok()) return fail(blocks.error());

  SequenceInput in{*ids, 0, *blocks, /*all_logits=*/true};
  ForwardOptions fopt;
  fopt.return_hidden = want_mtp;
  auto r = m.forward(std::span<const SequenceInput>(&in, 1), *cache, fopt);
  if (!r.ok()) return fail(r.error());
  Status st = write_npy_f32(args->get("out"), r->logits.data(), {n, m.config().vocab_size});
  if (!st.ok()) return fail(st.error());

  if (want_mtp && n >= 2) {
    std::vector<int32_t> next(ids->begin() + 1, ids->end());
    MtpSequenceInput min{next, r->hidden.data(), 0, *blocks, true};
    auto d = m.forward_mtp(std::span<const MtpSequenceInput>(&min, 1), *cache);
    if (!d.ok()) return fail(d.error());
    st = write_npy_f32(args->get("mtp"), d->logits.data(), {n - 1, m.config().vocab_size});
    if (!st.ok()) return fail(st.error());
  } else if (want_mtp) {
    st = write_npy_f32(args->get("mtp"), nullptr, {0, m.config().vocab_size});
    if (!st.ok()) return fail(st.error());
  }
  return 0;
}

const CommandRegistration kReg{"logits", "prefill token ids, write every position's logits (.npy)", run_logits};

}  // namespace
}  // namespace latent::cli
