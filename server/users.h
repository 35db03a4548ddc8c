#pragma once
// Per-user tokens and scopes for a team's latentd (--users FILE; docs/team.md).
//
// The file holds one JSON object per line; blank lines are skipped:
//   {"user": "ada", "token_sha256": "<64 lower-case hex>", "scopes": ["complete", "chat"], "weight": 2}
// "weight" is optional (default 1): the user's share of the engine against other users' (fair queueing,
// Request::tenant_weight; twice the weight, twice the turns when both wait), a number in (0, 1000].
// Only the SHA-256 of a token is stored (`latent user add` makes the token and prints it once). Scopes:
//   complete  POST /v1/completions, POST /infill, LSP textDocument/inlineCompletion, latent/explainContext
//   chat      POST /v1/chat/completions
//   agent     LSP latent/agent/*
//   admin     GET /metrics, GET /dashboard
// Anything else (GET /v1/models, LSP document sync) needs a known token and no scope; GET /health needs none.
//
// UserDirectory is what the server holds: the file's path and its current table, swapped whole on reload()
// (SIGHUP). A reload that fails keeps the previous table and says why.
// Thread-safety: UserDirectory's methods may be called from any thread; UserTable is immutable once parsed.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/base/result.h"

namespace latent::server {

enum Scope : unsigned {
  kScopeNone = 0,
  kScopeComplete = 1u << 0,
  kScopeChat = 1u << 1,
  kScopeAgent = 1u << 2,
  kScopeAdmin = 1u << 3,
};

// "complete" -> kScopeComplete; nullopt for an unknown name.
std::optional<Scope> scope_from_name(std::string_view name);
const char* scope_name(Scope scope);  // one bit
// "complete,chat" (from --scopes) -> bits; errors name the unknown scope and list the known ones.
Result<unsigned> parse_scope_list(const std::string& comma_separated);

// The scope an HTTP route needs (kScopeNone: any known user).
Scope scope_for_route(const std::string& method, const std::string& path);
// The scope an LSP method needs (kScopeNone: any known user).
Scope scope_for_lsp_method(std::string_view method);

struct User {
  std::string name;
  std::string token_sha256;  // lower-case hex
  unsigned scopes = 0;
  double weight = 1.0;  // fair-share weight, in (0, kMaxUserWeight]
};

constexpr double kMaxUserWeight = 1000;

class UserTable {
 public:
  // `file` names the source in errors: "users.jsonl line 3: expected ..., found ...".
  static Result<UserTable> parse(const std::string& text, const std::string& file);
  static Result<UserTable> load(const std::string& path);
  // The user whose token this is, by its SHA-256; null for an unknown token.
  const User* find_token(const std::string& token) const;
  const User* find_name(const std::string& name) const;
  size_t size() const { return by_hash_.size(); }

 private:
  std::map<std::string, User> by_hash_;
};

class UserDirectory {
 public:
  explicit UserDirectory(std::string path);
  // Reads the file again; on error the previous table stays. Returns the number of users loaded.
  Result<size_t> reload();
  std::optional<User> authenticate(const std::string& token) const;
  // The weight of user `name` in the current table; 1 for a name it does not hold.
  double weight_of(const std::string& name) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  mutable std::mutex mu_;
  std::shared_ptr<const UserTable> table_;
};

std::string sha256_hex(std::string_view data);
// 32 random bytes (OpenSSL's CSPRNG) as "lat_" + 64 hex digits.
Result<std::string> new_token();
// Appends {user, token_sha256, scopes[, weight]} to `path` (weight only when not 1), creating it with mode 0600.
// Refuses a name already in the file, a weight outside (0, kMaxUserWeight] and a file that does not parse (it
// would be refused at startup anyway).
Status append_user(const std::string& path, const std::string& name, unsigned scopes, const std::string& token,
                   double weight = 1.0);

}  // namespace latent::server
