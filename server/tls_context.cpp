#include "server/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509err.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace latent::server {
namespace {

namespace ssl = boost::asio::ssl;

Result<std::string> read_file(const std::string& option, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(ErrorCode::kNotFound,
                      option + " " + path + ": expected a readable PEM file, found " + std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().empty()) return make_error(ErrorCode::kInvalidArgument, option + " " + path + ": expected PEM, found an empty file");
  return ss.str();
}

// The first OpenSSL error on this thread's queue, cleared ("no start line" when the file holds no PEM block).
std::string openssl_reason(const boost::system::error_code& ec) {
  unsigned long e = ERR_peek_error();
  std::string why = e ? ERR_reason_error_string(e) ? ERR_reason_error_string(e) : ec.message() : ec.message();
  ERR_clear_error();
  return why;
}

}  // namespace

Result<std::shared_ptr<ssl::context>> load_tls_context(const std::string& cert_file, const std::string& key_file) {
  auto cert = read_file("--tls-cert", cert_file);
  if (!cert.ok()) return cert.error();
  auto key = read_file("--tls-key", key_file);
  if (!key.ok()) return key.error();

  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  // An encrypted key fails ("bad decrypt") instead of OpenSSL asking for a passphrase on the terminal.
  ctx->set_password_callback([](size_t, ssl::context::password_purpose) { return std::string(); });
  boost::system::error_code ec;
  ERR_clear_error();
  ctx->use_certificate_chain(boost::asio::buffer(*cert), ec);
  if (ec) {
    return make_error(ErrorCode::kInvalidArgument, "--tls-cert " + cert_file +
                                                       ": expected a PEM certificate (chain), found none usable (" +
                                                       openssl_reason(ec) + ")");
  }
  ctx->use_private_key(boost::asio::buffer(*key), ssl::context::pem, ec);
  // Asio takes OpenSSL's error off the queue into ec.
  const unsigned long key_error = ec.category() == boost::asio::error::get_ssl_category() ? static_cast<unsigned long>(ec.value()) : 0;
  if (ec && ERR_GET_LIB(key_error) == ERR_LIB_X509 &&
      (ERR_GET_REASON(key_error) == X509_R_KEY_VALUES_MISMATCH || ERR_GET_REASON(key_error) == X509_R_KEY_TYPE_MISMATCH)) {
    ERR_clear_error();
    return make_error(ErrorCode::kInvalidArgument, "--tls-key " + key_file + ": expected the private key of --tls-cert " +
                                                       cert_file + ", found a key that does not match it");
  }
  if (ec) {
    return make_error(ErrorCode::kInvalidArgument, "--tls-key " + key_file +
                                                       ": expected an unencrypted PEM private key, found none usable (" +
                                                       openssl_reason(ec) + ")");
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    ERR_clear_error();
    return make_error(ErrorCode::kInvalidArgument, "--tls-key " + key_file + ": expected the private key of --tls-cert " +
                                                       cert_file + ", found a key that does not match it");
  }
  X509* leaf = SSL_CTX_get0_certificate(ctx->native_handle());
  if (leaf && X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--tls-cert " + cert_file + ": expected a certificate valid now, found one that has expired");
  }
  if (leaf && X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--tls-cert " + cert_file + ": expected a certificate valid now, found one not valid yet");
  }
  return ctx;
}

}  // namespace latent::server
