#include "server/users.h"
#include "server/user_access.h"
#include "server/quota.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace latent::server {
namespace {

namespace fs = std::filesystem;

// SHA-256("secret"), as `printf secret | sha256sum` prints it.
const std::string kSecretHash = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

std::string line(const std::string& user, const std::string& hash, const std::string& scopes) {
  return "{\"user\": \"" + user + "\", \"token_sha256\": \"" + hash + "\", \"scopes\": " + scopes + "}\n";
}

std::string error_of(const std::string& text) {
  auto t = UserTable::parse(text, "users.jsonl");
  return t.ok() ? "ok" : t.error().message;
}

TEST(Users, Sha256IsTheStandardDigest) {
  EXPECT_EQ(sha256_hex("secret"), kSecretHash);
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Users, ParsesLinesAndFindsTokensByHash) {
  auto t = UserTable::parse(line("ada", kSecretHash, "[\"complete\", \"chat\"]") + "\n" +
                                line("bob", sha256_hex("other"), "[\"admin\"]"),
                            "users.jsonl");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->size(), 2u);
  const User* ada = t->find_token("secret");
  ASSERT_NE(ada, nullptr);
  EXPECT_EQ(ada->name, "ada");
  EXPECT_EQ(ada->scopes, unsigned(kScopeComplete | kScopeChat));
  EXPECT_EQ(t->find_token("other")->name, "bob");
  EXPECT_EQ(t->find_token("Secret"), nullptr);
  EXPECT_EQ(t->find_token(""), nullptr);
  EXPECT_EQ(t->find_token(kSecretHash), nullptr) << "the stored hash is not itself a token";
}

TEST(Users, BadLinesNameTheLineAndWhatWasExpected) {
  EXPECT_EQ(error_of("\nnot json\n"), "users.jsonl line 2: expected a JSON object {\"user\", \"token_sha256\", "
                                      "\"scopes\"}, found text that is not one");
  EXPECT_EQ(error_of(line("a b", kSecretHash, "[]")),
            "users.jsonl line 1: expected \"user\": a name of 1-64 letters, digits or ._-@, found \"a b\"");
  EXPECT_EQ(error_of(line("ada", "abc", "[]")),
            "users.jsonl line 1: expected \"token_sha256\": 64 lower-case hex digits, found 3 characters");
  EXPECT_EQ(error_of("{\"user\": \"ada\", \"token_sha256\": \"" + kSecretHash + "\"}"),
            "users.jsonl line 1: expected \"scopes\": an array of complete, chat, agent, admin, found none");
  EXPECT_EQ(error_of(line("ada", kSecretHash, "[\"root\"]")),
            "users.jsonl line 1: expected scopes among complete, chat, agent, admin, found \"root\"");
  EXPECT_EQ(error_of(line("ada", kSecretHash, "[]") + line("ada", sha256_hex("x"), "[]")),
            "users.jsonl line 2: expected each user once, found 'ada' again (first on line 1)");
  EXPECT_EQ(error_of(line("ada", kSecretHash, "[]") + line("bob", kSecretHash, "[]")),
            "users.jsonl line 2: expected a token of its own, found the token_sha256 of user 'ada'");
}

std::string weighted(const std::string& user, const std::string& hash, const std::string& weight) {
  return "{\"user\": \"" + user + "\", \"token_sha256\": \"" + hash + "\", \"scopes\": [\"chat\"], \"weight\": " +
         weight + "}\n";
}

TEST(Users, WeightsDefaultToOneAndBadOnesNameWhatWasExpected) {
  auto t = UserTable::parse(line("ada", kSecretHash, "[\"chat\"]") + weighted("bob", sha256_hex("b"), "2.5") +
                                weighted("eve", sha256_hex("e"), "1000"),
                            "users.jsonl");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->find_name("ada")->weight, 1.0);
  EXPECT_EQ(t->find_name("bob")->weight, 2.5);
  EXPECT_EQ(t->find_name("eve")->weight, 1000.0);
  for (const std::string bad : {"0", "-1", "1001", "\"2\"", "null", "[2]", "true"}) {
    EXPECT_EQ(error_of(line("ada", kSecretHash, "[]") + weighted("bob", sha256_hex("b"), bad)),
              "users.jsonl line 2: expected \"weight\": a number in (0, 1000], found " + bad);
  }
  EXPECT_EQ(error_of(weighted("bob", sha256_hex("b"), "1e400")).substr(0, 20), "users.jsonl line 1: ")
      << "out of double's range: refused, not infinite";
}

TEST(Users, ScopeListsAndRoutes) {
  EXPECT_EQ(*parse_scope_list("complete,chat"), unsigned(kScopeComplete | kScopeChat));
  EXPECT_EQ(parse_scope_list("complete,root").error().message,
            "--scopes: expected scopes among complete, chat, agent, admin, found 'root'");
  EXPECT_FALSE(parse_scope_list("").ok());
  EXPECT_EQ(scope_for_route("POST", "/v1/completions"), kScopeComplete);
  EXPECT_EQ(scope_for_route("POST", "/infill"), kScopeComplete);
  EXPECT_EQ(scope_for_route("POST", "/v1/chat/completions"), kScopeChat);
  EXPECT_EQ(scope_for_route("GET", "/metrics"), kScopeAdmin);
  EXPECT_EQ(scope_for_route("GET", "/dashboard"), kScopeAdmin);
  EXPECT_EQ(scope_for_route("GET", "/v1/models"), kScopeNone);
  EXPECT_EQ(scope_for_lsp_method("textDocument/inlineCompletion"), kScopeComplete);
  EXPECT_EQ(scope_for_lsp_method("latent/agent/start"), kScopeAgent);
  EXPECT_EQ(scope_for_lsp_method("textDocument/didChange"), kScopeNone);
}

class UsersFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("latent-users-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "users.jsonl").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string read() {
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  fs::path dir_;
  std::string path_;
};

TEST_F(UsersFile, AppendCreatesA0600FileWithOnlyTheHash) {
  auto token = new_token();
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->size(), 4u + 64u);
  EXPECT_NE(*token, *new_token());
  ASSERT_TRUE(append_user(path_, "ada", kScopeComplete | kScopeChat, *token).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string text = read();
  EXPECT_EQ(text.find(*token), std::string::npos) << "the plain token must never be stored";
  EXPECT_NE(text.find(sha256_hex(*token)), std::string::npos);
  ASSERT_TRUE(append_user(path_, "bob", kScopeAdmin, "tok-bob").ok());
  auto table = UserTable::load(path_);
  ASSERT_TRUE(table.ok()) << table.error().message;
  EXPECT_EQ(table->find_token(*token)->name, "ada");
  EXPECT_EQ(table->find_token("tok-bob")->scopes, unsigned(kScopeAdmin));
  const std::string before = read();
  auto again = append_user(path_, "ada", kScopeChat, "x");
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("expected a new user, found 'ada' there already"), std::string::npos);
  EXPECT_EQ(read(), before) << "a refused add leaves the file as it was";
}

TEST_F(UsersFile, AppendWritesAWeightOnlyWhenNotOneAndRefusesABadOne) {
  ASSERT_TRUE(append_user(path_, "ada", kScopeChat, "tok-ada").ok());
  ASSERT_TRUE(append_user(path_, "bob", kScopeChat, "tok-bob", 3).ok());
  const std::string text = read();
  EXPECT_EQ(text.find("weight"), text.rfind("weight")) << "only bob's line has one: " << text;
  UserDirectory dir(path_);
  ASSERT_EQ(*dir.reload(), 2u);
  EXPECT_EQ(dir.authenticate("tok-bob")->weight, 3.0);
  EXPECT_EQ(dir.weight_of("bob"), 3.0);
  EXPECT_EQ(dir.weight_of("ada"), 1.0);
  EXPECT_EQ(dir.weight_of("nobody"), 1.0);
  for (double bad : {0.0, -2.0, 1e6, std::nan("")}) {
    auto st = append_user(path_, "carol", kScopeChat, "tok-carol", bad);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("--weight: expected a number in (0, 1000], found"), std::string::npos)
        << st.error().message;
  }
  EXPECT_EQ(read(), text) << "a refused add leaves the file as it was";
}

// An LSP connection of a user: its agent turns are that user's work too (the engine's tenant and weight).
TEST(UserAccess, AgentTurnsCarryTheUsersTenantAndWeight) {
  MetricsRegistry metrics;
  auto o = options_for_user(lsp::LspServerOptions{}, SessionUser{"ada", kScopeAgent, 4.0}, metrics);
  EXPECT_EQ(o.agent.tenant, "ada");
  EXPECT_EQ(o.agent.tenant_weight, 4.0);
  auto anonymous = options_for_user(lsp::LspServerOptions{}, SessionUser{}, metrics);
  EXPECT_EQ(anonymous.agent.tenant, "");
  EXPECT_EQ(anonymous.agent.tenant_weight, 1.0);
}

// --syntax-check rank decodes several candidates per completion: their work counts against the user's token quota
// and in the token series (the prompt tokens they did not find in the cache, and their own), never as requests.
TEST(UserAccess, RankedCandidatesCountInTheQuotaAndTokensNotAsRequests) {
  MetricsRegistry metrics;
  QuotaLimits limits;
  limits.tokens_per_minute = 20;
  const auto frozen = std::chrono::steady_clock::now();
  auto quotas = std::make_shared<UserQuotas>(limits, [frozen] { return frozen; });
  auto o = options_for_user(lsp::LspServerOptions{}, SessionUser{"ada", kScopeComplete, 1.0}, metrics, quotas);
  ASSERT_TRUE(o.on_usage);
  lsp::CompletionUsage shown;  // the request's own: 10 + 5 charged
  shown.prompt_tokens = 10, shown.completion_tokens = 5;
  o.on_usage(shown);
  EXPECT_EQ(quotas->admit("ada"), std::nullopt);
  lsp::CompletionUsage candidate;  // prompt from the cache: 4 charged
  candidate.candidate = true, candidate.prompt_tokens = 10, candidate.cached_tokens = 10, candidate.completion_tokens = 4;
  o.on_usage(candidate);
  EXPECT_EQ(quotas->admit("ada"), std::nullopt) << "1 token left";
  lsp::CompletionUsage uncached = candidate;  // 2 prompt tokens prefilled: the quota is spent
  uncached.cached_tokens = 8, uncached.completion_tokens = 0;
  o.on_usage(uncached);
  EXPECT_NE(quotas->admit("ada"), std::nullopt) << "the candidates' tokens count against the quota";
  const std::string text = metrics.render();
  EXPECT_NE(text.find(R"(latent_user_requests_total{user="ada",endpoint="lsp/inlineCompletion",status="200"} 1)"),
            std::string::npos) << text;
  EXPECT_NE(text.find(R"(latent_user_tokens_total{user="ada",kind="prompt"} 12)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(latent_user_tokens_total{user="ada",kind="completion"} 9)"), std::string::npos) << text;
}

TEST_F(UsersFile, ReloadKeepsThePreviousUsersWhenTheFileTurnsBad) {
  { std::ofstream(path_) << line("ada", kSecretHash, "[\"complete\"]"); }
  UserDirectory dir(path_);
  ASSERT_EQ(*dir.reload(), 1u);
  EXPECT_EQ(dir.authenticate("secret")->name, "ada");
  { std::ofstream(path_) << "garbage\n"; }
  auto bad = dir.reload();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("line 1: expected a JSON object"), std::string::npos);
  EXPECT_EQ(dir.authenticate("secret")->name, "ada") << "a failed reload keeps the users loaded before";
  { std::ofstream(path_) << line("bob", sha256_hex("b"), "[\"chat\"]"); }
  ASSERT_EQ(*dir.reload(), 1u);
  EXPECT_FALSE(dir.authenticate("secret").has_value()) << "a removed user is gone after the reload";
  EXPECT_EQ(dir.authenticate("b")->name, "bob");
  fs::remove(path_);
  EXPECT_NE(dir.reload().error().message.find("expected a readable file"), std::string::npos);
}

}  // namespace
}  // namespace latent::server
