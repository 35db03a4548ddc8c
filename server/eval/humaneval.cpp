#include "server/eval/humaneval.h"

#include <zlib.h>

#include <nlohmann/json.hpp>

namespace latent::eval {

namespace {

Result<std::string> read_maybe_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files as they are
  if (!f) return make_error(ErrorCode::kNotFound, "cannot open " + path);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      return make_error(ErrorCode::kCorrupt, path + ": expected gzip or plain JSON lines, found a read error: " + msg);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (size_t(512) << 20)) {
      gzclose(f);
      return make_error(ErrorCode::kResourceExhausted, path + ": expected at most 512 MiB of problems");
    }
  }
  gzclose(f);
  return out;
}

}  // namespace

Result<std::vector<InfillProblem>> load_infill_problems(const std::string& path) {
  LATENT_ASSIGN_OR_RETURN(std::string text, read_maybe_gzip(path));
  std::vector<InfillProblem> out;
  size_t line_no = 0, start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    start = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return make_error(ErrorCode::kCorrupt, path + ":" + std::to_string(line_no) + ": expected a JSON object");
    }
    InfillProblem p;
    for (auto [field, dst] : {std::pair{"task_id", &p.task_id}, {"entry_point", &p.entry_point},
                              {"prompt", &p.prompt}, {"suffix", &p.suffix},
                              {"canonical_solution", &p.canonical_solution}, {"test", &p.test}}) {
      auto it = j.find(field);
      if (it == j.end() || !it->is_string()) {
        return make_error(ErrorCode::kCorrupt, path + ":" + std::to_string(line_no) + ": expected a string field '" +
                                                   field + "', found " + (it == j.end() ? "none" : it->type_name()));
      }
      *dst = it->get<std::string>();
    }
    out.push_back(std::move(p));
  }
  if (out.empty()) return make_error(ErrorCode::kInvalidArgument, path + ": expected problems, found none");
  return out;
}

std::string infill_program(const InfillProblem& p, const std::string& completion) {
  return p.prompt + completion + p.suffix + "\n" + p.test + "\n" + "check(" + p.entry_point + ")\n";
}

Result<std::string> infill_suite_file(const std::string& suite, const std::string& data_dir) {
  if (suite == "humaneval-single-line") return data_dir + "/HumanEval-SingleLineInfilling.jsonl.gz";
  if (suite == "humaneval-multi-line") return data_dir + "/HumanEval-MultiLineInfilling.jsonl.gz";
  return make_error(ErrorCode::kInvalidArgument,
                    "--suite: expected humaneval-single-line or humaneval-multi-line, found '" + suite + "'");
}

}  // namespace latent::eval
