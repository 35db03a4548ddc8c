#pragma once
// file:// URIs <-> paths (percent-encoding per RFC 3986). Other schemes keep their URI as the "path".
#include <string>
#include <string_view>

namespace latent::lsp {

// "file:///home/a%20b/x.py" -> "/home/a b/x.py"; a URI of another scheme is returned unchanged.
std::string uri_to_path(std::string_view uri);
std::string path_to_uri(std::string_view path);

}  // namespace latent::lsp
