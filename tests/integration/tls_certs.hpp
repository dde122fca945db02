#pragma once
// Throw-away certificates for tests, made with the `openssl` command at test time: a CA, server
// certificates it signs (EC P-256 or RSA 2048, any subjectAltNames) and client certificates.
// Header-only and independent of the harness, so unit and integration tests can both use it.
//
//   TempDir dir;
//   auto ca = makeCa(dir.path(), "test-ca");
//   auto server = makeCert(ca, dir.path(), "server");              // DNS:localhost, IP:127.0.0.1
//   auto client = makeClientCert(ca, dir.path(), "alice");
//   std::string block = serverTlsJson(server);                     // a config "tls" block
//   // curl --cacert <ca.cert_file> https://127.0.0.1:PORT/...
//
// Every function throws std::runtime_error (with openssl's output) when a command fails.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/wait.h>

#include "tests/integration/harness.hpp"  // sh()

namespace fledge::test {

// PEM files: a certificate and its private key (unencrypted).
struct CertFiles {
  std::string cert_file;
  std::string key_file;
};

// A fresh directory under /tmp, removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fledge-tls-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

namespace tls_certs_detail {

inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `cmd` through the shell; throws with its output unless it exits 0.
inline void run(const std::string& cmd) {
  std::FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) throw std::runtime_error("cannot run: " + cmd);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = ::pclose(p);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("failed: " + cmd + "\n" + out);
}

inline void writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

// Our own request config, so the system's openssl.cnf adds nothing.
inline std::string requestConfig(const std::string& dir, const std::string& name, const std::string& cn) {
  const std::string path = dir + "/" + name + ".req.cnf";
  writeFile(path, "[req]\nprompt = no\ndistinguished_name = dn\n[dn]\nCN = " + cn + "\n");
  return path;
}

inline void makeKey(const std::string& path, const std::string& key_type) {
  if (key_type == "ec") run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + quote(path));
  else if (key_type == "rsa") run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + quote(path));
  else throw std::runtime_error("key_type must be \"ec\" or \"rsa\", not \"" + key_type + "\"");
}

// Signs a new key's certificate for `cn` with `ca`, with the extensions in `ext` (config lines).
inline CertFiles sign(const CertFiles& ca, const std::string& dir, const std::string& name, const std::string& cn,
                      const std::string& key_type, const std::string& ext, int days) {
  CertFiles out{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  makeKey(out.key_file, key_type);
  const std::string csr = dir + "/" + name + ".csr", ext_file = dir + "/" + name + ".ext.cnf";
  run("openssl req -new -config " + quote(requestConfig(dir, name, cn)) + " -key " + quote(out.key_file) + " -out " + quote(csr));
  writeFile(ext_file, "[ext]\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n" + ext);
  std::random_device rd;
  const unsigned long long serial = (static_cast<unsigned long long>(rd()) << 31) ^ rd();  // distinct per certificate
  run("openssl x509 -req -in " + quote(csr) + " -CA " + quote(ca.cert_file) + " -CAkey " + quote(ca.key_file) + " -set_serial " +
      std::to_string(serial) + " -days " + std::to_string(days) + " -sha256 -extfile " + quote(ext_file) +
      " -extensions ext -out " + quote(out.cert_file));
  for (const auto& f : {csr, ext_file, dir + "/" + name + ".req.cnf"}) std::filesystem::remove(f);
  return out;
}

}  // namespace tls_certs_detail

// A self-signed CA (EC P-256, ten years): `dir`/`name`.crt and .key. Trust it with
// `curl --cacert <cert_file>` or a config's ca_file / client_ca_file.
inline CertFiles makeCa(const std::string& dir, const std::string& name) {
  using namespace tls_certs_detail;
  CertFiles out{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  makeKey(out.key_file, "ec");
  const std::string cnf = requestConfig(dir, name, name);
  std::ofstream(cnf, std::ios::app) << "[ext]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n"
                                       "subjectKeyIdentifier = hash\n";
  run("openssl req -new -x509 -config " + quote(cnf) + " -extensions ext -key " + quote(out.key_file) + " -days 3650 -sha256 -out " +
      quote(out.cert_file));
  std::filesystem::remove(cnf);
  return out;
}

// A server certificate signed by `ca`, valid for `days` from now: `dir`/`name`.crt and .key.
// `sans` are subjectAltName entries as openssl writes them ("DNS:example.com", "DNS:*.example.com",
// "IP:127.0.0.1"); the common name is `name`. `key_type`: "ec" (P-256) or "rsa" (2048 bits).
inline CertFiles makeCert(const CertFiles& ca, const std::string& dir, const std::string& name,
                          const std::vector<std::string>& sans = {"DNS:localhost", "IP:127.0.0.1"}, const std::string& key_type = "ec",
                          int days = 30) {
  std::string san;
  for (const auto& s : sans) san += (san.empty() ? "" : ",") + s;
  std::string ext = "basicConstraints = critical, CA:FALSE\nextendedKeyUsage = serverAuth\n";
  ext += key_type == "rsa" ? "keyUsage = critical, digitalSignature, keyEncipherment\n" : "keyUsage = critical, digitalSignature\n";
  if (!san.empty()) ext += "subjectAltName = " + san + "\n";
  return tls_certs_detail::sign(ca, dir, name, name, key_type, ext, days);
}

// A client certificate (EC P-256, 30 days) for common name `cn`, signed by `ca`:
// `dir`/`cn`.crt and .key. Use with `curl --cert <cert_file> --key <key_file>`.
inline CertFiles makeClientCert(const CertFiles& ca, const std::string& dir, const std::string& cn) {
  return tls_certs_detail::sign(ca, dir, cn, cn, "ec",
                                "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
                                "extendedKeyUsage = clientAuth\n",
                                30);
}

// A listener's "tls" block serving `cert`: {"certificates":[{"cert_file":...,"key_file":...}]},
// with `extra` members appended (e.g. R"(,"client_ca_file":"/x/ca.crt")"). Paths are not escaped:
// the ones made here need none.
inline std::string serverTlsJson(const CertFiles& cert, const std::string& extra = "") {
  return R"({"certificates":[{"cert_file":")" + cert.cert_file + R"(","key_file":")" + cert.key_file + "\"}]" + extra + "}";
}

// ---------------------------------------------------------------------------------------------
// Clients for the TLS tests

struct CurlResult {
  int exit_code = -1;    // curl's: 0 ok, 35 handshake failed, 52 empty reply, 56 receive failed, 60 untrusted
  std::string status;    // per transfer, "200" ... ("000": no HTTP answer), space-separated
  std::string connects;  // per transfer, new connections it opened, space-separated
  std::string body;      // the first transfer's body
  std::string output;    // everything, for failure messages
};

// curl `args` (quoted by the caller), silent but for errors. Each transfer's body is followed by
// "\nHTTP_STATUS=<code>;CONNECTS=<n>;" and then `writeout` (more -w variables).
inline CurlResult curl(const std::string& args, const std::string& writeout = "") {
  CurlResult r;
  const std::string format = "\\nHTTP_STATUS=%{http_code};CONNECTS=%{num_connects};" + writeout;
  const ShellResult run = sh("curl -sS --max-time 10 -w " + tls_certs_detail::quote(format) + " " + args);
  r.exit_code = run.exit_code;
  r.output = run.output;
  for (std::size_t at = r.output.find("HTTP_STATUS="); at != std::string::npos; at = r.output.find("HTTP_STATUS=", at + 1)) {
    r.status += (r.status.empty() ? "" : " ") + r.output.substr(at + 12, 3);
    const auto c = r.output.find("CONNECTS=", at);
    r.connects += (r.connects.empty() ? "" : " ") + r.output.substr(c + 9, r.output.find(';', c) - c - 9);
  }
  r.body = r.output.substr(0, r.output.find("\nHTTP_STATUS="));
  return r;
}

}  // namespace fledge::test
