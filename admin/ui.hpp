#pragma once
// The web console (admin/ui/, plain JavaScript modules) served at /ui/ by the admin listener,
// from bytes compiled into the binary (admin/embed_ui.cmake). The pages call the admin API
// with the signed-in token; nothing is fetched from anywhere else.
#include <string_view>
#include <vector>

#include "admin/http_server.hpp"

namespace fledge::admin {

struct ConsoleAsset {
  std::string_view path;  // below admin/ui/, e.g. "pages/flags.js"
  std::string_view body;
};
const std::vector<ConsoleAsset>& consoleAssets();  // generated

// GET /ui/... (and / and /ui redirect to /ui/).
void installConsole(HttpServer& server);

// The answer to GET `target` below /ui/ (tests call it directly).
Response consoleFile(const Request& req);

}  // namespace fledge::admin
