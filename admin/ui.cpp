#include "admin/ui.hpp"

#include <algorithm>

namespace fledge::admin {
namespace http = boost::beast::http;

namespace {

constexpr std::string_view kUiPrefix = "/ui/";

std::string_view contentType(std::string_view path) {
  auto ends = [&](std::string_view ext) { return path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext; };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".ico")) return "image/x-icon";
  return "application/octet-stream";
}

// 302, not 301: browsers keep a permanent redirect, and this listener may serve no console later.
Response redirect(const Request& req, std::string location) {
  Response res{http::status::found, req.version()};
  res.set(http::field::location, std::move(location));
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = "see /ui/\n";
  res.keep_alive(req.keep_alive());
  res.prepare_payload();
  return res;
}

}  // namespace

Response consoleFile(const Request& req) {
  std::string_view path = req.target();
  path = path.substr(0, path.find_first_of("?#"));
  if (path == "/" || path == "/ui") return redirect(req, "/ui/");
  path.remove_prefix(std::min(path.size(), kUiPrefix.size()));
  if (path.empty()) path = "index.html";
  const auto& assets = consoleAssets();
  auto it = std::find_if(assets.begin(), assets.end(), [&](const ConsoleAsset& a) { return a.path == path; });
  if (it == assets.end()) return HttpServer::text(req, http::status::not_found, "not found\n");
  Response res{http::status::ok, req.version()};
  res.set(http::field::content_type, contentType(path));
  // The pages run nothing but their own files and talk to nothing but this listener.
  res.set("Content-Security-Policy",
          "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  // The console changes with the binary: always ask again (the files are small).
  res.set(http::field::cache_control, "no-cache");
  res.body() = std::string(it->body);
  res.keep_alive(req.keep_alive());
  res.prepare_payload();
  return res;
}

void installConsole(HttpServer& server) {
  server.handle(http::verb::get, "/", consoleFile);
  server.handle(http::verb::get, "/ui", consoleFile);
  server.handlePrefix(http::verb::get, std::string(kUiPrefix), consoleFile);
}

}  // namespace fledge::admin
