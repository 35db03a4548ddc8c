#pragma once
// The self-contained HTML report of `latent eval replay`: the results JSON embedded in the page, Chart.js
// (the editors/web dependency, read from disk by the caller) inlined, no request to any host. Without the
// Chart.js source the page says so and shows the tables only.
#include <string>

#include <nlohmann/json.hpp>

namespace latent::eval {

std::string replay_report_html(const nlohmann::json& report, const std::string& chartjs_source);

// `text` safe inside HTML element content and attribute values.
std::string html_escape(std::string_view text);

}  // namespace latent::eval
