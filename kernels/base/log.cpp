#include "kernels/base/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace latent {
namespace {

LogLevel initial_level() {
  LogLevel level = LogLevel::kInfo;
  if (const char* env = std::getenv("LATENT_LOG")) parse_log_level(env, &level);
  return level;
}

std::atomic<int> g_level{static_cast<int>(initial_level())};
std::mutex g_mu;
std::function<void(LogLevel, const std::string&)> g_sink;

const char* level_tag(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "E";
    case LogLevel::kWarn: return "W";
    case LogLevel::kInfo: return "I";
    case LogLevel::kDebug: return "D";
    case LogLevel::kTrace: return "T";
  }
  return "?";
}

}  // namespace

LogLevel log_level() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }
void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool parse_log_level(const std::string& name, LogLevel* out) {
  static const struct { const char* name; LogLevel level; } kLevels[] = {
      {"error", LogLevel::kError}, {"warn", LogLevel::kWarn}, {"info", LogLevel::kInfo},
      {"debug", LogLevel::kDebug}, {"trace", LogLevel::kTrace}};
  for (const auto& l : kLevels) {
    if (name == l.name) { *out = l.level; return true; }
  }
  return false;
}

void set_log_sink(std::function<void(LogLevel, const std::string&)> sink) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_sink = std::move(sink);
}

void log_message(LogLevel level, const char* file, int line, const char* fmt, ...) {
  char body[2048];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(body, sizeof body, fmt, args);
  va_end(args);
  const char* base = std::strrchr(file, '/');
  base = base ? base + 1 : file;
  double t = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  char text[2300];
  std::snprintf(text, sizeof text, "%s %.3f %s:%d] %s", level_tag(level), t, base, line, body);
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_sink) {
    g_sink(level, text);
  } else {
    std::fprintf(stderr, "%s\n", text);
  }
}

}  // namespace latent
