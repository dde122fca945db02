#include "ctl/ctl.hpp"

#include <boost/beast/http/status.hpp>
#include <boost/json/object.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>

#include <unistd.h>

#include "ctl/client.hpp"
#include "ctl/json_text.hpp"
#include "ctl/view.hpp"
#include "proxy/split.hpp"

namespace fledge::ctl {

const char* const kUsage =
    "usage: fledge ctl [--url URL] [--token TOKEN] [--timeout S] [-o json] COMMAND\n"
    "  status                                 config version, routes and their split weights, clusters, flags, rollouts\n"
    "  split ROUTE ARM=W [ARM=W ...]          set split weights (percent); one arm of a two-arm split: the other gets 100-W\n"
    "  flag KEY                               show a flag\n"
    "  flag KEY on|off                        enable or disable a flag\n"
    "  flag KEY default VARIANT               set a flag's default variant\n"
    "  rollout start FILE.json [--name NAME] [--wait] [--timeout-wait S]\n"
    "                                         start a rollout; NAME: --name, else the file's \"name\", else FILE's stem;\n"
    "                                         --wait follows it until it finishes (exit 0 succeeded, 3 rolled back or aborted)\n"
    "  rollout status NAME [--watch]          a rollout's state; --watch follows it live until it finishes or Ctrl-C\n"
    "  rollout list                           every rollout\n"
    "  rollout pause|resume|promote|abort NAME\n"
    "  rollout delete NAME                    delete a finished rollout\n"
    "options:\n"
    "  --url URL          the admin API, http://HOST:PORT (default: $FLEDGE_ADMIN_URL, else http://127.0.0.1:9901)\n"
    "  --token TOKEN      sent as \"Authorization: Bearer TOKEN\" (default: $FLEDGE_ADMIN_TOKEN)\n"
    "  --timeout S        seconds allowed for each request (default 10)\n"
    "  -o, --output json  the API's JSON answer instead of the view (--watch: one document per poll)\n"
    "exit status: 0 ok, 1 a request, the API or a file failed, 2 usage, 3 rollout rolled back or aborted,\n"
    "  4 --timeout-wait passed\n";

Environment processEnvironment() {
  Environment env;
  if (const char* url = std::getenv("FLEDGE_ADMIN_URL")) env.admin_url = url;
  if (const char* token = std::getenv("FLEDGE_ADMIN_TOKEN")) env.admin_token = token;
  env.terminal = isatty(STDOUT_FILENO) == 1;
  return env;
}

namespace {

namespace http = boost::beast::http;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kDefaultUrl = "http://127.0.0.1:9901";
constexpr std::string_view kApi = "/api/v1/";

// The command's words and the options, wherever they stood ("--x V" or "--x=V").
struct CommandLine {
  std::vector<std::string_view> words;
  std::map<std::string, std::string, std::less<>> options;
};

struct OptionRule {
  std::string_view name;
  bool takes_value;
  bool global;  // allowed with every command
};
constexpr OptionRule kOptions[] = {
    {"--url", true, true},      {"--token", true, true},         {"--timeout", true, true}, {"--output", true, true},
    {"--help", false, true},    {"--name", true, false},         {"--wait", false, false},  {"--timeout-wait", true, false},
    {"--watch", false, false},
};

boost::system::result<CommandLine, std::string> parseCommandLine(const std::vector<std::string_view>& args) {
  CommandLine cl;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a == "--") {
      cl.words.insert(cl.words.end(), args.begin() + std::ptrdiff_t(i) + 1, args.end());
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      cl.words.push_back(a);
      continue;
    }
    std::string_view name = a == "-o" ? "--output" : a == "-h" ? "--help" : a;
    std::optional<std::string_view> value;
    if (auto eq = a.find('='); eq != std::string_view::npos && a.substr(0, 2) == "--") {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
    }
    const auto* rule = std::find_if(std::begin(kOptions), std::end(kOptions), [&](const OptionRule& r) { return r.name == name; });
    if (rule == std::end(kOptions)) return "unknown option " + std::string(a);
    if (rule->takes_value && !value) {
      if (i + 1 >= args.size()) return std::string(a) + " needs a value";
      value = args[++i];
    }
    if (!rule->takes_value && value) return std::string(name) + " takes no value";
    cl.options[std::string(name)] = std::string(value.value_or(""));
  }
  return cl;
}

// Seconds as given on the command line ("10", "0.5"): positive, at most a year.
std::optional<std::chrono::milliseconds> parseSeconds(std::string_view text) {
  double s = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), s);
  if (ec != std::errc() || end != text.data() + text.size() || !(s > 0) || s > 365 * 86400.0) return std::nullopt;
  return std::max(std::chrono::milliseconds(1), std::chrono::milliseconds(std::llround(s * 1000)));
}

// A path segment: resource names travel as they are, anything else percent-encoded (the API
// then answers that no such resource exists, instead of a name changing the path).
std::string segment(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') out += char(c);
    else out += {'%', kHex[c >> 4], kHex[c & 15]};
  }
  return out;
}

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct ArmWeight {
  std::string arm;
  std::uint32_t parts = 0;  // millionths, as proxy::percentToParts counts them
};

// "canary=5", "canary=12.5": a percentage from 0 to 100 with at most 4 decimals.
boost::system::result<ArmWeight, std::string> parseArmWeight(std::string_view text) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size())
    return {boost::system::in_place_error, "\"" + std::string(text) + "\": give ARM=WEIGHT, e.g. canary=5"};
  const std::string_view w = text.substr(eq + 1);
  double percent = -1;
  auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), percent);
  ArmWeight out{std::string(text.substr(0, eq))};
  if (ec != std::errc() || end != w.data() + w.size() || !proxy::percentToParts(percent, out.parts))
    return {boost::system::in_place_error,
            "\"" + std::string(text) + "\": the weight must be a percentage from 0 to 100 with at most 4 decimals"};
  return out;
}

// A weight as the API takes it: an integer when it is one, else a decimal.
json::value weightValue(std::uint32_t parts) {
  if (parts % 10'000 == 0) return json::value(std::int64_t(parts / 10'000));
  return json::value(parts / 10'000.0);
}

// `FILE` without its directory and ".json".
std::string stemOf(std::string_view file) {
  if (auto slash = file.rfind('/'); slash != std::string_view::npos) file.remove_prefix(slash + 1);
  if (file.size() > 5 && file.substr(file.size() - 5) == ".json") file.remove_suffix(5);
  return std::string(file);
}

std::string versionText(const std::string& etag) {
  if (etag.size() < 3) return {};
  return " [version " + etag.substr(1, etag.size() - 2) + "]";
}

// An API answer: its document, and its text as it came (for -o json).
struct Reply {
  json::value doc;
  std::string text;
  std::string etag;
};

class Ctl {
 public:
  Ctl(AdminClient& client, std::ostream& out, std::ostream& err, bool json_output, bool terminal)
      : client_(client), out_(out), err_(err), json_(json_output), terminal_(terminal) {}

  int dispatch(const CommandLine& cl) {
    const auto& w = cl.words;
    const std::string_view cmd = w[0];
    const std::string command = std::string(cmd) + (cmd == "rollout" && w.size() > 1 ? " " + std::string(w[1]) : "");
    std::vector<std::string_view> allowed;  // the command's own options
    if (command == "rollout start") allowed = {"--name", "--wait", "--timeout-wait"};
    if (command == "rollout status") allowed = {"--watch"};
    for (const auto& [name, value] : cl.options) {
      const auto* rule = std::find_if(std::begin(kOptions), std::end(kOptions), [&](const OptionRule& r) { return r.name == name; });
      if (!rule->global && std::find(allowed.begin(), allowed.end(), name) == allowed.end())
        return usage(name + " does not apply to \"" + command + "\"");
    }
    if (cmd == "status") return w.size() == 1 ? status() : usage("status takes no arguments");
    if (cmd == "split") return split(w);
    if (cmd == "flag") return flag(w);
    if (cmd == "rollout") return rollout(w, cl.options);
    err_ << "fledge ctl: unknown command \"" << cmd << "\"\n" << kUsage;
    return kExitUsage;
  }

 private:
  int fail(int code, const std::string& message) {
    err_ << "fledge ctl: " << message << "\n";
    return code;
  }
  int usage(const std::string& message) { return fail(kExitUsage, message + " (fledge ctl --help)"); }

  // One API call: its answer, or nullopt once the failure is reported (unreported if interrupted).
  std::optional<Reply> call(http::verb method, const std::string& path, const json::value* body = nullptr,
                            const std::string& if_match = {}) {
    auto answer = client_.request(method, path, body ? toJson(*body) : std::string(), if_match);
    if (client_.interrupted()) return std::nullopt;
    if (!answer) {
      fail(kExitFailed, answer.error());
      return std::nullopt;
    }
    const std::string what = std::string(http::to_string(method)) + " " + path + ": ";
    auto doc = parseJson(answer->body);
    if (answer->status >= 300) {
      std::string message = what + std::to_string(answer->status);
      const auto error = doc ? findString(*doc, "/error") : std::nullopt;
      if (error) {
        message += " " + *error;
        if (auto field = findString(*doc, "/field"); field && !field->empty()) message += " (field " + *field + ")";
      } else {
        std::string body = answer->body.substr(0, answer->body.find('\n')).substr(0, 200);
        message += " " + std::string(http::obsolete_reason(http::int_to_status(answer->status))) + (body.empty() ? "" : ": " + body);
        // Not the API's own answer: a Fledge without admin.data_dir has no /api/v1/.
        if (answer->status == 404) message += " (is this Fledge's admin listener, with admin.data_dir set?)";
      }
      if (answer->status == 401) message += " (set FLEDGE_ADMIN_TOKEN or --token)";
      fail(kExitFailed, message);
      return std::nullopt;
    }
    if (!doc) {
      fail(kExitFailed, what + "the answer is not JSON: " + doc.error());
      return std::nullopt;
    }
    return Reply{std::move(*doc), std::move(answer->body), std::move(answer->etag)};
  }

  void printJson(const std::string& text) {
    std::string_view t = text;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.remove_suffix(1);
    out_ << t << "\n" << std::flush;
  }

  int status() {
    auto config = call(http::verb::get, std::string(kApi) + "config");
    if (!config) return kExitFailed;
    auto rollouts = call(http::verb::get, std::string(kApi) + "rollouts");
    if (!rollouts) return kExitFailed;
    if (json_) {
      json::object doc;
      doc["config"] = config->doc;
      const auto* list = find(rollouts->doc, "/rollouts");
      doc["rollouts"] = list ? *list : json::value(json::array());
      out_ << toJson(doc) << "\n";
    } else {
      out_ << statusText(config->doc, rollouts->doc);
    }
    return kExitOk;
  }

  int split(const std::vector<std::string_view>& w) {
    if (w.size() < 3) return usage("split needs ROUTE and at least one ARM=WEIGHT, e.g. fledge ctl split shop canary=5");
    const std::string route(w[1]);
    std::vector<ArmWeight> given;
    for (std::size_t i = 2; i < w.size(); ++i) {
      auto aw = parseArmWeight(w[i]);
      if (!aw) return usage(aw.error());
      for (const auto& g : given)
        if (g.arm == aw->arm) return usage("arm \"" + g.arm + "\" is given twice");
      given.push_back(std::move(*aw));
    }
    const std::string path = std::string(kApi) + "routes/" + segment(route);
    std::string read_version;
    if (given.size() == 1) {
      // One arm of a two-arm split: the other arm takes the rest, of the route as read (If-Match:
      // a change in between makes the write fail with 412 rather than apply to another split).
      auto current = call(http::verb::get, path);
      if (!current) return kExitFailed;
      read_version = current->etag;
      const auto* arms = find(current->doc, "/split/arms");
      if (arms && arms->is_array() && arms->get_array().size() == 2) {
        std::vector<std::string> names;
        for (const auto& a : arms->get_array()) names.push_back(findString(a, "/name").value_or(""));
        const auto it = std::find(names.begin(), names.end(), given[0].arm);
        if (it != names.end()) given.push_back({names[it == names.begin() ? 1 : 0], 1'000'000 - given[0].parts});
      }
    }
    json::array arms;
    for (const auto& g : given) arms.push_back(json::object{{"name", g.arm}, {"weight", weightValue(g.parts)}});
    const json::value body = json::object{{"arms", std::move(arms)}};
    auto reply = call(http::verb::put, path + "/split", &body, read_version);
    if (!reply) return kExitFailed;
    if (json_) printJson(reply->text);
    else out_ << "route " << route << ": " << routeTargetText(reply->doc) << versionText(reply->etag) << "\n";
    return kExitOk;
  }

  int flag(const std::vector<std::string_view>& w) {
    if (w.size() < 2 || w.size() > 4) return usage("flag needs KEY, then nothing, on, off or default VARIANT");
    const std::string key(w[1]);
    const std::string path = std::string(kApi) + "flags/" + segment(key);
    if (w.size() == 2) {
      auto reply = call(http::verb::get, path);
      if (!reply) return kExitFailed;
      if (json_) printJson(reply->text);
      else out_ << flagText(key, reply->doc);
      return kExitOk;
    }
    json::value body;
    std::string sub;
    if (w.size() == 3 && (w[2] == "on" || w[2] == "off")) {
      body = json::object{{"state", w[2] == "on" ? "ENABLED" : "DISABLED"}};
      sub = "/state";
    } else if (w.size() == 4 && w[2] == "default") {
      body = json::object{{"defaultVariant", w[3]}};
      sub = "/default-variant";
    } else {
      return usage("flag " + key + ": give on, off or default VARIANT, not \"" + std::string(w[2]) + "\"");
    }
    auto reply = call(http::verb::put, path + sub, &body);
    if (!reply) return kExitFailed;
    if (json_) {
      printJson(reply->text);
      return kExitOk;
    }
    if (sub == "/state") out_ << "flag " << key << ": " << findString(reply->doc, "/state").value_or("?");
    else out_ << "flag " << key << ": default variant " << w[3];
    out_ << versionText(reply->etag) << "\n";
    return kExitOk;
  }

  int rollout(const std::vector<std::string_view>& w, const std::map<std::string, std::string, std::less<>>& options) {
    const std::string_view sub = w.size() > 1 ? w[1] : std::string_view{};
    const auto has = [&](std::string_view o) { return options.find(o) != options.end(); };
    if (sub == "list") {
      if (w.size() != 2) return usage("rollout list takes no arguments");
      auto reply = call(http::verb::get, std::string(kApi) + "rollouts");
      if (!reply) return kExitFailed;
      if (json_) printJson(reply->text);
      else out_ << rolloutListText(reply->doc);
      return kExitOk;
    }
    if (sub == "start") {
      if (w.size() != 3) return usage("rollout start needs FILE.json");
      std::optional<std::chrono::milliseconds> limit;
      if (has("--timeout-wait")) {
        if (!has("--wait")) return usage("--timeout-wait goes with --wait");
        limit = parseSeconds(options.find("--timeout-wait")->second);
        if (!limit) return usage("--timeout-wait must be a positive number of seconds");
      }
      std::optional<std::string> name;
      if (has("--name")) name = options.find("--name")->second;
      return rolloutStart(std::string(w[2]), name, has("--wait"), limit);
    }
    if (sub == "status" || sub == "pause" || sub == "resume" || sub == "promote" || sub == "abort" || sub == "delete") {
      if (w.size() != 3) return usage("rollout " + std::string(sub) + " needs NAME");
      const std::string name(w[2]);
      const std::string path = std::string(kApi) + "rollouts/" + segment(name);
      if (sub == "status" && has("--watch")) return follow(name, false, std::nullopt);
      const http::verb method = sub == "status" ? http::verb::get : sub == "delete" ? http::verb::delete_ : http::verb::post;
      auto reply = call(method, sub == "status" || sub == "delete" ? path : path + "/" + std::string(sub));
      if (!reply) return kExitFailed;
      if (json_) printJson(reply->text);
      else if (sub == "status") out_ << rolloutText(reply->doc, nowMs(), {});
      else if (sub == "delete") out_ << "rollout " << name << " deleted" << versionText(reply->etag) << "\n";
      else out_ << rolloutStepLine(reply->doc) << versionText(reply->etag) << "\n";
      return kExitOk;
    }
    return usage(sub.empty() ? "rollout needs a command: start, status, list, pause, resume, promote, abort or delete"
                             : "unknown rollout command \"" + std::string(sub) + "\"");
  }

  int rolloutStart(const std::string& file, std::optional<std::string> name, bool wait, std::optional<std::chrono::milliseconds> limit) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return fail(kExitFailed, file + ": cannot read: " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return fail(kExitFailed, file + ": cannot read: " + std::strerror(errno));
    auto doc = parseJson(ss.str());
    if (!doc) return fail(kExitFailed, file + ": not valid JSON: " + doc.error());
    if (!doc->is_object()) return fail(kExitFailed, file + ": must be a JSON object (a rollout specification)");
    auto& spec = doc->get_object();
    // The name names the resource; it is not part of the specification the API takes.
    if (const auto* n = spec.if_contains("name")) {
      if (!n->is_string()) return fail(kExitFailed, file + ": \"name\" must be a string");
      if (!name) name = std::string(n->get_string());
      spec.erase("name");
    }
    if (!name) name = stemOf(file);
    if (name->empty()) return usage("the rollout needs a name (--name)");
    auto reply = call(http::verb::put, std::string(kApi) + "rollouts/" + segment(*name), &*doc);
    if (!reply) return kExitFailed;
    if (!wait) {
      if (json_) printJson(reply->text);
      else out_ << "rollout " << *name << " started: " << rolloutTargetText(reply->doc) << "\n" << rolloutStepLine(reply->doc) << "\n";
      return kExitOk;
    }
    if (!json_ && !terminal_) out_ << "rollout " << *name << " started: " << rolloutTargetText(reply->doc) << "\n" << std::flush;
    return follow(*name, true, limit);
  }

  // Polls a rollout until it finishes: a live screen on a terminal; else one line per change of
  // phase or step (--wait) or one per poll (--watch). --watch also ends on Ctrl-C (exit 0);
  // --wait leaves Ctrl-C its usual meaning.
  int follow(const std::string& name, bool wait, std::optional<std::chrono::milliseconds> limit) {
    if (!wait) client_.catchInterrupts();
    const auto poll = wait ? 500ms : 1000ms;
    const auto start = Clock::now();
    const std::string path = std::string(kApi) + "rollouts/" + segment(name);
    RateMeter meter;
    std::optional<Clock::time_point> drawn;
    std::string last_line;
    for (;;) {
      auto reply = call(http::verb::get, path);
      if (client_.interrupted()) return kExitOk;
      if (!reply) return kExitFailed;
      const auto now = Clock::now();
      const std::string phase = findString(reply->doc, "/status/phase").value_or("");
      const bool done = finishedPhase(phase);
      if (json_) {
        if (!wait || done) printJson(reply->text);
      } else if (terminal_) {
        if (!drawn || now - *drawn >= 1s || done) {  // redrawn once a second; the rates span the redraws
          out_ << "\x1b[H\x1b[2J" << rolloutText(reply->doc, nowMs(), meter.update(reply->doc, now)) << std::flush;
          drawn = now;
        }
      } else if (wait) {
        if (std::string line = rolloutStepLine(reply->doc); line != last_line) out_ << (last_line = line) << "\n" << std::flush;
      } else {
        out_ << rolloutLine(reply->doc, nowMs(), meter.update(reply->doc, now)) << "\n" << std::flush;
      }
      if (done) {
        if (phase == "succeeded") return kExitOk;
        const std::string reason = findString(reply->doc, "/status/reason").value_or("");
        return fail(kExitRolledBack, "rollout " + name + " " + phase + (reason.empty() ? "" : ": " + reason));
      }
      auto pause = std::chrono::duration_cast<std::chrono::milliseconds>(poll);
      if (limit) {
        const auto left = *limit - std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        if (left <= 0ms) {
          if (json_) printJson(reply->text);  // the one document: the rollout as it stands
          return fail(kExitWaitTimeout, "rollout " + name + " still " + phase + " after " + secondsText(*limit) + " (--timeout-wait)");
        }
        pause = std::min(pause, left);
      }
      if (!client_.sleep(pause)) return kExitOk;
    }
  }

  AdminClient& client_;
  std::ostream& out_;
  std::ostream& err_;
  const bool json_, terminal_;
};

}  // namespace

int run(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err, const Environment& env) {
  auto cl = parseCommandLine(args);
  if (!cl) {
    err << "fledge ctl: " << cl.error() << " (fledge ctl --help)\n";
    return kExitUsage;
  }
  if (cl->options.count("--help")) {
    out << kUsage;
    return kExitOk;
  }
  if (cl->words.empty()) {
    err << kUsage;
    return kExitUsage;
  }
  const auto option = [&](std::string_view name) -> std::optional<std::string> {
    auto it = cl->options.find(name);
    return it == cl->options.end() ? std::nullopt : std::optional(it->second);
  };

  std::string url_text(kDefaultUrl), where = "set FLEDGE_ADMIN_URL";
  if (auto u = option("--url")) url_text = *u, where = "from --url";
  else if (!env.admin_url.empty()) url_text = env.admin_url, where = "from FLEDGE_ADMIN_URL";
  auto url = parseAdminUrl(url_text);
  if (!url) {
    err << "fledge ctl: admin URL \"" << url_text << "\" (" << where << "): " << url.error() << "\n";
    return kExitUsage;
  }
  std::chrono::milliseconds timeout = 10s;
  if (auto t = option("--timeout")) {
    auto parsed = parseSeconds(*t);
    if (!parsed) {
      err << "fledge ctl: --timeout must be a positive number of seconds (fledge ctl --help)\n";
      return kExitUsage;
    }
    timeout = *parsed;
  }
  const std::string output = option("--output").value_or("text");
  if (output != "json" && output != "text") {
    err << "fledge ctl: --output must be json or text (fledge ctl --help)\n";
    return kExitUsage;
  }
  AdminClient client(std::move(*url), option("--token").value_or(env.admin_token), timeout, where);
  return Ctl(client, out, err, output == "json", env.terminal).dispatch(*cl);
}

}  // namespace fledge::ctl
