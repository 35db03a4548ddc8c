#pragma once
// The TLS server context for latentd --tls-cert FILE --tls-key FILE (OpenSSL through Boost.Asio): HTTPS and
// WSS on the daemon's one port. Loading checks everything a bad deployment gets wrong and names the file:
// unreadable or missing, not PEM, a key that does not match the certificate, a certificate outside its
// validity period. TLS 1.2 and newer only.
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "kernels/base/result.h"

namespace latent::server {

Result<std::shared_ptr<boost::asio::ssl::context>> load_tls_context(const std::string& cert_file,
                                                                    const std::string& key_file);

}  // namespace latent::server
