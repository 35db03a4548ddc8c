#pragma once
// Type-through: the user typing the characters a suggestion predicted keeps that suggestion's generation.
// These are the pure checks; AssistantCore applies them (see assistant_core.h).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace latent::lsp {

// When `now` is `before` with text inserted at `offset` (and nothing else changed), that text; else nullopt.
// Shapes: before = B[0, offset) + B[offset, end); now = B[0, offset) + typed + B[offset, end).
std::optional<std::string> inserted_at(std::string_view before, size_t offset, std::string_view now);

// Whether `typed` is what the suggestion `shown` (streamed so far, or final) begins with.
inline bool predicted(std::string_view shown, std::string_view typed) {
  return shown.size() >= typed.size() && shown.compare(0, typed.size(), typed) == 0;
}

}  // namespace latent::lsp
