#include "server/users.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace latent::server {
namespace {

using nlohmann::json;

constexpr const char* kScopeNames[] = {"complete", "chat", "agent", "admin"};

std::string known_scopes() { return "complete, chat, agent, admin"; }

bool valid_user_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (unsigned char c : s) {
    if (!(std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == '@')) return false;
  }
  return true;
}

bool valid_weight(double w) { return std::isfinite(w) && w > 0 && w <= kMaxUserWeight; }
std::string weight_limit() { return std::to_string(static_cast<int>(kMaxUserWeight)); }

bool is_sha256_hex(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = d[p[i] >> 4];
    out[2 * i + 1] = d[p[i] & 15];
  }
  return out;
}

// Constant time over the 64 hex digits: a lookup does not tell, by its timing, how close a guess came.
bool same_hash(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

}  // namespace

std::optional<Scope> scope_from_name(std::string_view name) {
  for (unsigned i = 0; i < 4; ++i) {
    if (name == kScopeNames[i]) return static_cast<Scope>(1u << i);
  }
  return std::nullopt;
}

const char* scope_name(Scope scope) {
  for (unsigned i = 0; i < 4; ++i) {
    if (scope == (1u << i)) return kScopeNames[i];
  }
  return "none";
}

Result<unsigned> parse_scope_list(const std::string& text) {
  unsigned bits = 0;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    auto s = scope_from_name(item);
    if (!s) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--scopes: expected scopes among " + known_scopes() + ", found '" + item + "'");
    }
    bits |= *s;
  }
  if (bits == 0) {
    return make_error(ErrorCode::kInvalidArgument, "--scopes: expected at least one of " + known_scopes() + ", found none");
  }
  return bits;
}

Scope scope_for_route(const std::string& method, const std::string& path) {
  if (path == "/v1/completions" || path == "/infill") return kScopeComplete;
  if (path == "/v1/chat/completions") return kScopeChat;
  if (path == "/metrics" || path == "/dashboard") return kScopeAdmin;
  (void)method;
  return kScopeNone;
}

Scope scope_for_lsp_method(std::string_view method) {
  if (method == "textDocument/inlineCompletion" || method == "latent/explainContext") return kScopeComplete;
  if (method.rfind("latent/agent/", 0) == 0) return kScopeAgent;
  return kScopeNone;
}

Result<UserTable> UserTable::parse(const std::string& text, const std::string& file) {
  UserTable t;
  std::map<std::string, size_t> names;  // name -> line
  std::stringstream ss(text);
  std::string line;
  size_t n = 0;
  while (std::getline(ss, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto where = file + " line " + std::to_string(n) + ": ";
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return make_error(ErrorCode::kInvalidArgument, where + "expected a JSON object {\"user\", \"token_sha256\", "
                                                             "\"scopes\"}, found text that is not one");
    }
    User u;
    auto name = j.find("user");
    if (name == j.end() || !name->is_string() || !valid_user_name(name->get<std::string>())) {
      return make_error(ErrorCode::kInvalidArgument,
                        where + "expected \"user\": a name of 1-64 letters, digits or ._-@, found " +
                            (name == j.end() ? std::string("none") : name->dump()));
    }
    u.name = name->get<std::string>();
    auto hash = j.find("token_sha256");
    if (hash == j.end() || !hash->is_string() || !is_sha256_hex(hash->get<std::string>())) {
      return make_error(ErrorCode::kInvalidArgument,
                        where + "expected \"token_sha256\": 64 lower-case hex digits, found " +
                            (hash == j.end() ? std::string("none") : hash->is_string() ? std::to_string(hash->get<std::string>().size()) + " characters" : hash->type_name()));
    }
    u.token_sha256 = hash->get<std::string>();
    auto scopes = j.find("scopes");
    if (scopes == j.end() || !scopes->is_array()) {
      return make_error(ErrorCode::kInvalidArgument, where + "expected \"scopes\": an array of " + known_scopes() +
                                                             ", found " + (scopes == j.end() ? "none" : scopes->type_name()));
    }
    for (const auto& s : *scopes) {
      auto bit = s.is_string() ? scope_from_name(s.get<std::string>()) : std::nullopt;
      if (!bit) {
        return make_error(ErrorCode::kInvalidArgument,
                          where + "expected scopes among " + known_scopes() + ", found " + s.dump());
      }
      u.scopes |= *bit;
    }
    if (auto w = j.find("weight"); w != j.end()) {
      if (!w->is_number() || !valid_weight(w->get<double>())) {
        return make_error(ErrorCode::kInvalidArgument, where + "expected \"weight\": a number in (0, " +
                                                               weight_limit() + "], found " + w->dump());
      }
      u.weight = w->get<double>();
    }
    if (auto it = names.find(u.name); it != names.end()) {
      return make_error(ErrorCode::kInvalidArgument, where + "expected each user once, found '" + u.name +
                                                             "' again (first on line " + std::to_string(it->second) + ")");
    }
    if (t.by_hash_.count(u.token_sha256)) {
      return make_error(ErrorCode::kInvalidArgument, where + "expected a token of its own, found the token_sha256 of user '" +
                                                             t.by_hash_[u.token_sha256].name + "'");
    }
    names[u.name] = n;
    t.by_hash_[u.token_sha256] = std::move(u);
  }
  return t;
}

Result<UserTable> UserTable::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(ErrorCode::kNotFound, "--users " + path + ": expected a readable file, found " + std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

const User* UserTable::find_token(const std::string& token) const {
  if (token.empty()) return nullptr;
  const std::string h = sha256_hex(token);
  const User* found = nullptr;
  // Every entry is compared, in constant time each: the answer's timing says nothing about the table.
  for (const auto& [hash, user] : by_hash_) {
    if (same_hash(hash, h)) found = &user;
  }
  return found;
}

const User* UserTable::find_name(const std::string& name) const {
  for (const auto& [hash, user] : by_hash_) {
    if (user.name == name) return &user;
  }
  return nullptr;
}

UserDirectory::UserDirectory(std::string path) : path_(std::move(path)) {}

Result<size_t> UserDirectory::reload() {
  auto t = UserTable::load(path_);
  if (!t.ok()) return t.error();
  size_t n = t->size();
  auto table = std::make_shared<const UserTable>(std::move(*t));
  std::lock_guard<std::mutex> lock(mu_);
  table_ = std::move(table);
  return n;
}

std::optional<User> UserDirectory::authenticate(const std::string& token) const {
  std::shared_ptr<const UserTable> t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    t = table_;
  }
  if (!t) return std::nullopt;
  const User* u = t->find_token(token);
  if (!u) return std::nullopt;
  return *u;
}

double UserDirectory::weight_of(const std::string& name) const {
  std::shared_ptr<const UserTable> t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    t = table_;
  }
  const User* u = t ? t->find_name(name) : nullptr;
  return u ? u->weight : 1.0;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return hex(md, n);
}

Result<std::string> new_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return make_error(ErrorCode::kIo, "expected random bytes from OpenSSL's RAND_bytes, found it failing");
  }
  return "lat_" + hex(bytes, sizeof bytes);
}

Status append_user(const std::string& path, const std::string& name, unsigned scopes, const std::string& token,
                   double weight) {
  if (!valid_user_name(name)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "expected a user name of 1-64 letters, digits or ._-@, found '" + name + "'");
  }
  if (!valid_weight(weight)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--weight: expected a number in (0, " + weight_limit() + "], found " + std::to_string(weight));
  }
  // O_CREAT with 0600: a new file is never readable by others, not even for a moment.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(ErrorCode::kIo, "--users " + path + ": cannot open it: " + std::strerror(errno));
  std::string text;
  char buf[65536];
  for (ssize_t r; (r = ::pread(fd, buf, sizeof buf, static_cast<off_t>(text.size()))) > 0;) text.append(buf, static_cast<size_t>(r));
  auto table = UserTable::parse(text, path);
  if (!table.ok()) {
    ::close(fd);
    return make_error(ErrorCode::kInvalidArgument, table.error().message + " (fix the file first)");
  }
  if (table->find_name(name)) {
    ::close(fd);
    return make_error(ErrorCode::kInvalidArgument, "--users " + path + ": expected a new user, found '" + name +
                                                       "' there already (remove its line to replace it)");
  }
  json scope_list = json::array();
  for (unsigned i = 0; i < 4; ++i) {
    if (scopes & (1u << i)) scope_list.push_back(kScopeNames[i]);
  }
  json entry{{"user", name}, {"token_sha256", sha256_hex(token)}, {"scopes", scope_list}};
  if (weight != 1.0) entry["weight"] = weight;
  std::string line = entry.dump() + "\n";
  if (!text.empty() && text.back() != '\n') line = "\n" + line;
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  const int err = errno;
  ::close(fd);
  if (!ok) return make_error(ErrorCode::kIo, "--users " + path + ": write failed: " + std::strerror(err));
  return Status::Ok();
}

}  // namespace latent::server
