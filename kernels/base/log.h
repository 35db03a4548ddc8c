#pragma once
// One logger for every library. Thread-safe; writes whole lines to stderr (never stdout: stdout carries the
// LSP stream in `latentd --stdio`). Level from LATENT_LOG (error|warn|info|debug|trace), default info.
//
//   LATENT_LOG_INFO("loaded %s: %zu tensors", path.c_str(), n);
#include <cstdarg>
#include <functional>
#include <string>

namespace latent {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3, kTrace = 4 };

LogLevel log_level();
void set_log_level(LogLevel level);
bool parse_log_level(const std::string& name, LogLevel* out);
// Redirect log lines (e.g. into a test, or into LSP window/logMessage). Pass nullptr to restore stderr.
void set_log_sink(std::function<void(LogLevel, const std::string&)> sink);

void log_message(LogLevel level, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

}  // namespace latent

#define LATENT_LOG(level, ...)                                                   \
  do {                                                                           \
    if (static_cast<int>(level) <= static_cast<int>(::latent::log_level()))      \
      ::latent::log_message(level, __FILE__, __LINE__, __VA_ARGS__);             \
  } while (0)
#define LATENT_LOG_ERROR(...) LATENT_LOG(::latent::LogLevel::kError, __VA_ARGS__)
#define LATENT_LOG_WARN(...) LATENT_LOG(::latent::LogLevel::kWarn, __VA_ARGS__)
#define LATENT_LOG_INFO(...) LATENT_LOG(::latent::LogLevel::kInfo, __VA_ARGS__)
#define LATENT_LOG_DEBUG(...) LATENT_LOG(::latent::LogLevel::kDebug, __VA_ARGS__)
#define LATENT_LOG_TRACE(...) LATENT_LOG(::latent::LogLevel::kTrace, __VA_ARGS__)
