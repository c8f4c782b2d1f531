#include "cli/command_support.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>
#include <thread>

#include "cli/output.h"

namespace storeplane::cli {

namespace json = boost::json;

// --- session --------------------------------------------------------------------------

ApiSession::ApiSession(CliConfig config)
    : config_(std::move(config)), http_(client::ClientOptions{config_.ca_file, config_.insecure}) {}

Result<client::HttpResponse> ApiSession::Call(const std::string& method, const std::string& path,
                                              const std::string& body, HeaderList headers) {
  client::HttpRequest request;
  request.method = method;
  request.url = config_.server + path;
  request.body = body;
  request.timeout_ms = config_.timeout_ms;
  bool has_content_type = false;
  bool has_accept = false;
  for (const auto& [name, value] : headers) {
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "content-type") has_content_type = true;
    if (lower == "accept") has_accept = true;
  }
  request.headers = std::move(headers);
  if (!has_accept) request.headers.emplace_back("Accept", "application/json, application/problem+json");
  if (!body.empty() && !has_content_type) request.headers.emplace_back("Content-Type", "application/json");
  if (!config_.token.empty()) request.headers.emplace_back("Authorization", "Bearer " + config_.token);
  return http_.Send(request);
}

std::string PercentEncode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0x0f];
    }
  }
  return out;
}

std::string WithQuery(std::string path, const HeaderList& params) {
  bool first = true;
  for (const auto& [name, value] : params) {
    if (value.empty()) continue;
    path += (first ? "?" : "&") + name + "=" + PercentEncode(value);
    first = false;
  }
  return path;
}

// --- reporting ------------------------------------------------------------------------

int ReportTransport(const CliState& state, const Error& error) {
  *state.err << "storeplane: " << OneLine(error.message) << "\n";
  return ExitCodeForError(error);
}

int ReportProblem(const CliState& state, const client::HttpResponse& response) {
  *state.err << ProblemLine(ParseProblem(response)) << "\n";
  return ExitCodeForStatus(response.status) == kExitOk ? kExitServerError : ExitCodeForStatus(response.status);
}

int UsageError(const CliState& state, const std::string& message) {
  *state.err << ErrorLine("usage", message) << "\n";
  return kExitUsage;
}

int UnexpectedResponse(const CliState& state, const std::string& message) {
  *state.err << ErrorLine("unexpected response", message) << "\n";
  return kExitServerError;
}

std::variant<JsonReply, Failure> CallJson(const CliState& state, ApiSession& session, const std::string& method,
                                          const std::string& path, const std::string& body, HeaderList headers) {
  auto result = session.Call(method, path, body, std::move(headers));
  if (!result) return Failure{ReportTransport(state, result.error())};
  client::HttpResponse& response = result.value();
  if (response.status < 200 || response.status >= 300) return Failure{ReportProblem(state, response)};
  boost::system::error_code ec;
  json::value parsed = json::parse(response.body, ec);
  if (ec || !parsed.is_object()) {
    return Failure{UnexpectedResponse(state, method + " " + path + " returned a body that is not a JSON object")};
  }
  return JsonReply{std::move(response), std::move(parsed)};
}

std::variant<json::value, Failure> CollectPages(const CliState& state, ApiSession& session,
                                                const std::function<std::string(const std::string&)>& path_for,
                                                bool all, json::array& items) {
  std::string cursor;
  std::set<std::string> seen;
  for (;;) {
    std::string path = path_for(cursor);
    auto reply = CallJson(state, session, "GET", path);
    if (auto* failure = std::get_if<Failure>(&reply)) return *failure;
    const json::object& page = std::get<JsonReply>(reply).body.as_object();
    auto it = page.find("items");
    if (it == page.end() || !it->value().is_array()) {
      return Failure{UnexpectedResponse(state, "GET " + path + " has no \"items\" array")};
    }
    for (const auto& item : it->value().as_array()) items.push_back(item);
    auto nc = page.find("next_cursor");
    json::value next_cursor = (nc == page.end()) ? json::value(nullptr) : nc->value();
    if (!next_cursor.is_string() || next_cursor.as_string().empty()) return json::value(nullptr);
    if (!all) return next_cursor;
    cursor = std::string(next_cursor.as_string());
    if (!seen.insert(cursor).second) return Failure{UnexpectedResponse(state, "the server repeated a page cursor")};
  }
}

int RunPagedListing(CliState& state, const PagedListing& listing) {
  return WithSession(state, [&](ApiSession& session) {
    json::array items;
    auto collected = CollectPages(state, session, listing.path_for, listing.all, items);
    if (auto* failure = std::get_if<Failure>(&collected)) return failure->exit_code;
    const json::value next_cursor = std::get<json::value>(collected);
    json::object out;
    out["items"] = items;
    out["next_cursor"] = next_cursor;
    Print(state, FormatOf(session), out, [&] { return items.empty() ? listing.empty_text : listing.table(items); });
    if (FormatOf(session) == OutputFormat::kTable && next_cursor.is_string()) {
      *state.err << "storeplane: more " << listing.noun << ": use --all, or " << listing.cursor_flag << " "
                 << OneLine(next_cursor.as_string()) << " for the next page\n";
    }
    return static_cast<int>(kExitOk);
  });
}

int WithSession(CliState& state, const std::function<int(ApiSession&)>& body) {
  auto config = ResolveConfig(state.flags, state.env);
  if (!config) {
    *state.err << ErrorLine("invalid configuration", config.error().message) << "\n";
    return kExitUsage;
  }
  ApiSession session(std::move(config.value()));
  return body(session);
}

void Print(const CliState& state, OutputFormat format, const json::value& value,
           const std::function<std::string()>& table) {
  switch (format) {
    case OutputFormat::kJson: *state.out << ToJsonText(value); break;
    case OutputFormat::kYaml: *state.out << ToYamlText(value); break;
    case OutputFormat::kTable: *state.out << table(); break;
  }
}

int PollDelayMs(int attempt) {
  constexpr int kFastPolls = 5;
  constexpr int kFirstDelayMs = 200;
  constexpr int kMaxDelayMs = 1000;
  if (attempt < kFastPolls) return kFirstDelayMs;
  const int doublings = std::min(attempt - kFastPolls + 1, 3);
  return std::min(kMaxDelayMs, kFirstDelayMs << doublings);
}

std::variant<Polled, Failure> PollUntil(const CliState& state, ApiSession& session, const std::string& path,
                                        json::object current, int timeout_s,
                                        const std::function<bool(const json::object&)>& done,
                                        const std::function<void(const json::object&)>& on_poll) {
  const std::string id = CellText(current, "id");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (int attempt = 0; !done(current); ++attempt) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return Polled{std::move(current), true};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(PollDelayMs(attempt))));
    auto reply = CallJson(state, session, "GET", path);
    if (auto* failure = std::get_if<Failure>(&reply)) return *failure;
    current = std::get<JsonReply>(reply).body.as_object();
    if (CellText(current, "id") != id) {
      return Failure{UnexpectedResponse(state, "GET " + path + " returned another object than " + id)};
    }
    if (on_poll) on_poll(current);
  }
  return Polled{std::move(current), false};
}

std::function<int()> Guarded(CliState& state, std::function<int()> run) {
  return [&state, run = std::move(run)]() -> int {
    try {
      return run();
    } catch (const std::exception& e) {
      *state.err << ErrorLine("unexpected error", e.what()) << "\n";
    } catch (...) {
      *state.err << ErrorLine("unexpected error", "unknown exception") << "\n";
    }
    return kExitServerError;
  };
}

}  // namespace storeplane::cli
