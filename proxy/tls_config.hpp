#pragma once
// The "tls" blocks of the configuration (listeners, clusters, admin and OFREP listeners); what
// they mean at run time is in proxy/tls.hpp.
#include <string>
#include <vector>

namespace fledge::proxy {

enum class TlsVersion { k12, k13 };

struct TlsCertificateFiles {
  std::string cert_file;  // PEM: the certificate, then its chain
  std::string key_file;
  bool operator==(const TlsCertificateFiles&) const = default;
};

// A listener's "tls" block.
struct TlsServerConfig {
  std::vector<TlsCertificateFiles> certificates;  // the first is the default (no or unknown SNI)
  TlsVersion min_version = TlsVersion::k12;
  std::string client_ca_file;  // set: client certificates are requested and verified against it
  bool require_client_cert = false;
  bool operator==(const TlsServerConfig&) const = default;
};

// A cluster's "tls" block: how Fledge speaks TLS to its endpoints.
struct TlsClientConfig {
  std::string ca_file;      // empty: the system's trust store
  std::string server_name;  // SNI and the name verified; empty: the endpoint's host as configured
  bool verify = true;
  std::string cert_file, key_file;  // a client certificate, for upstreams that require one
  TlsVersion min_version = TlsVersion::k12;
  bool operator==(const TlsClientConfig&) const = default;
};

}  // namespace fledge::proxy
