#include "server/web_ui.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace latent::server {
namespace {

namespace fs = std::filesystem;

HttpRequest request(const std::string& origin, const std::string& host) {
  HttpRequest r;
  r.method = "GET";
  r.path = r.target = "/lsp";
  if (!origin.empty()) r.headers["origin"] = origin;
  if (!host.empty()) r.headers["host"] = host;
  return r;
}

TEST(WebUi, UiModeIsOnForLoopbackByDefault) {
  EXPECT_TRUE(*parse_ui_mode("auto", true));
  EXPECT_FALSE(*parse_ui_mode("auto", false));
  EXPECT_TRUE(*parse_ui_mode("on", false));
  EXPECT_FALSE(*parse_ui_mode("off", true));
  auto bad = parse_ui_mode("yes", true);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "--ui: expected on, off or auto, found 'yes'");
}

TEST(WebUi, ContentTypes) {
  EXPECT_EQ(content_type_for("a/index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("ui/playground.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("ui/codicon.ttf"), "font/ttf");
  EXPECT_EQ(content_type_for("ui/x.bin"), "application/octet-stream");
}

TEST(WebUi, OwnOriginIsOriginEqualToAHostThatIsLoopbackUnlessATokenGuards) {
  EXPECT_TRUE(is_own_origin(request("http://127.0.0.1:8741", "127.0.0.1:8741"), false));
  EXPECT_TRUE(is_own_origin(request("http://localhost:8741", "localhost:8741"), false));
  EXPECT_TRUE(is_own_origin(request("http://[::1]:8741", "[::1]:8741"), false));
  EXPECT_TRUE(is_own_origin(request("https://127.0.0.2", "127.0.0.2"), false));
  // Another page, or another port of this host.
  EXPECT_FALSE(is_own_origin(request("http://evil.example", "127.0.0.1:8741"), false));
  EXPECT_FALSE(is_own_origin(request("http://127.0.0.1:9999", "127.0.0.1:8741"), false));
  // DNS rebinding: Origin matches Host, but Host is a name that is not loopback (nor merely starts with 127.).
  EXPECT_FALSE(is_own_origin(request("http://evil.example:8741", "evil.example:8741"), false));
  EXPECT_FALSE(is_own_origin(request("http://127.evil.example:8741", "127.evil.example:8741"), false));
  // With a token the page still needs it, so any matching Host counts (a team server's name).
  EXPECT_TRUE(is_own_origin(request("https://gpu.example.com", "gpu.example.com"), true));
  EXPECT_FALSE(is_own_origin(request("https://evil.example", "gpu.example.com"), true));
  EXPECT_FALSE(is_own_origin(request("", "127.0.0.1:8741"), false));
  EXPECT_FALSE(is_own_origin(request("http://127.0.0.1:8741", ""), false));
}

class WebUiRoutes : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("latent-web-ui-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "ui/sub");
    write(dir_ / "index.html", "<!doctype html><title>p</title>");
    write(dir_ / "dashboard.html", "<!doctype html><title>d</title>");
    write(dir_ / "ui/playground.js", "console.log(1)");
    write(dir_ / "ui/sub/x.css", "body{}");
    write(dir_ / "secret.txt", "not served");
  }
  void TearDown() override { fs::remove_all(dir_); }
  static void write(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }
  HttpResponse get(const std::string& path) {
    HttpRequest r;
    r.method = "GET";
    r.path = r.target = path;
    return router_.handle(r);
  }
  fs::path dir_;
  HttpRouter router_;
};

TEST_F(WebUiRoutes, ServesThePagesAndUiFilesAsPublicRoutes) {
  auto n = add_web_ui_routes(router_, dir_.string());
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 4u);
  auto index = get("/");
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<!doctype html><title>p</title>");
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_NE(index.headers["Content-Security-Policy"].find("connect-src 'self'"), std::string::npos);
  EXPECT_EQ(get("/dashboard").body, "<!doctype html><title>d</title>");
  EXPECT_EQ(get("/ui/playground.js").content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(get("/ui/sub/x.css").body, "body{}");
  EXPECT_TRUE(router_.is_public("GET", "/ui/playground.js"));
  EXPECT_FALSE(router_.is_public("POST", "/ui/playground.js"));
  // Only files under ui/ at start are routes: nothing else in the folder, no path that climbs out.
  EXPECT_EQ(get("/secret.txt").status, 404);
  EXPECT_EQ(get("/ui/../secret.txt").status, 404);
  EXPECT_EQ(get("/ui/missing.js").status, 404);
}

TEST_F(WebUiRoutes, AFolderWithoutTheBuiltUiIsAnErrorThatSaysHowToBuildIt) {
  fs::remove(dir_ / "index.html");
  auto n = add_web_ui_routes(router_, dir_.string());
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message.find("expected the built web UI (index.html), found no index.html"), std::string::npos)
      << n.error().message;
  EXPECT_EQ(get("/").status, 404);
  auto none = add_web_ui_routes(router_, (dir_ / "nope").string());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no such folder"), std::string::npos);
}

}  // namespace
}  // namespace latent::server
