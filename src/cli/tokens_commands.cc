#include "cli/tokens_commands.h"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <limits>
#include <memory>

#include "cli/output.h"

namespace storeplane::cli {
namespace {

namespace json = boost::json;

constexpr std::int64_t kMaxDurationSeconds = std::int64_t{100} * 366 * 86400;

struct CreateArgs {
  std::string principal;
  std::optional<std::string> description;
  std::string expires_in;
};

int RunCreate(CliState& state, const CreateArgs& args) {
  std::optional<std::int64_t> expires_in;
  if (!args.expires_in.empty()) {
    auto seconds = ParseDuration(args.expires_in);
    if (!seconds) return UsageError(state, "--expires-in: " + seconds.error().message);
    expires_in = seconds.value();
  }
  return WithSession(state, [&](ApiSession& session) {
    json::object body;
    body["principal"] = args.principal;
    if (args.description) body["description"] = *args.description;
    if (expires_in) body["expires_in_seconds"] = *expires_in;
    auto reply = CallJson(state, session, "POST", "/v1/tokens", json::serialize(body));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::object& token = std::get<JsonReply>(reply).body.as_object();
    auto text = token.find("token");
    if (text == token.end() || !text->value().is_string() || text->value().as_string().empty()) {
      return UnexpectedResponse(state, "the created token has no \"token\" text");
    }
    Print(state, FormatOf(session), token, [&] { return std::string(text->value().as_string()) + "\n"; });
    std::string expires = CellText(token, "expires_at");
    *state.err << "storeplane: created token " << OneLine(CellText(token, "id")) << " for principal "
               << OneLine(CellText(token, "principal"))
               << (expires == "<none>" ? std::string(", no expiry") : ", expires " + OneLine(expires))
               << "; store it now, it is not shown again\n";
    return static_cast<int>(kExitOk);
  });
}

int RunList(CliState& state, const std::string& principal) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "GET", WithQuery("/v1/tokens", {{"principal", principal}}));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& listing = std::get<JsonReply>(reply).body;
    auto it = listing.as_object().find("items");
    if (it == listing.as_object().end() || !it->value().is_array()) {
      return UnexpectedResponse(state, "the token list has no \"items\" array");
    }
    const json::array& items = it->value().as_array();
    Print(state, FormatOf(session), listing, [&] {
      if (items.empty()) return std::string("No tokens found.\n");
      return TokensTable(items);
    });
    return static_cast<int>(kExitOk);
  });
}

int RunRevoke(CliState& state, const std::string& id) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "DELETE", "/v1/tokens/" + PercentEncode(id));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& token = std::get<JsonReply>(reply).body;
    Print(state, FormatOf(session), token, [&] {
      return "token " + CellText(token.as_object(), "id") + " revoked (principal " +
             CellText(token.as_object(), "principal") + ")\n";
    });
    return static_cast<int>(kExitOk);
  });
}

}  // namespace

Result<std::int64_t> ParseDuration(std::string_view text) {
  const std::string shown = "\"" + std::string(text) + "\"";
  const std::string hint = "; use a number and a unit s, m, h, d or w, e.g. 90m, 12h, 30d";
  if (text.empty()) return Error::Invalid("empty duration" + hint);
  std::int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    std::int64_t number = 0;
    size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (number > kMaxDurationSeconds) return Error::Invalid("duration " + shown + " is too long");
      number = number * 10 + (text[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || i == text.size()) return Error::Invalid("duration " + shown + " is not valid" + hint);
    std::int64_t unit = 0;
    switch (text[i]) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      case 'w': unit = 7 * 86400; break;
      default: return Error::Invalid("duration " + shown + " has an unknown unit" + hint);
    }
    ++i;
    if (number > kMaxDurationSeconds / unit) return Error::Invalid("duration " + shown + " is too long");
    total += number * unit;
    if (total > kMaxDurationSeconds) return Error::Invalid("duration " + shown + " is too long");
  }
  if (total == 0) return Error::Invalid("duration " + shown + " is zero");
  return total;
}

std::string TokensTable(const json::array& tokens) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : tokens) {
    if (!item.is_object()) continue;
    const auto& token = item.as_object();
    rows.push_back({CellText(token, "id"), CellText(token, "principal"), CellText(token, "description"),
                    CellText(token, "created_at"), CellText(token, "expires_at"), CellText(token, "revoked_at")});
  }
  return RenderTable({"TOKEN", "PRINCIPAL", "DESCRIPTION", "CREATED", "EXPIRES", "REVOKED"}, rows);
}

void AddTokensCommands(CLI::App& root, CliState& state) {
  CLI::App* tokens = root.add_subcommand("tokens", "Create, list and revoke API tokens");
  tokens->require_subcommand(1);

  auto create_args = std::make_shared<CreateArgs>();
  CLI::App* create = tokens->add_subcommand("create", "Create a token for a principal (its text is shown once)");
  create->add_option("--principal", create_args->principal, "Principal the token authenticates as")->required();
  create->add_option("--description", create_args->description, "What the token is for, e.g. the machine");
  create->add_option("--expires-in", create_args->expires_in, "Lifetime, e.g. 90m, 12h, 30d (default: no expiry)");
  create->footer(
      "In table output the token text is the only line on stdout, and a note on stderr\n"
      "says it is not shown again; -o json|yaml print the whole record with the token.");
  create->final_callback([&state, create_args] {
    state.action = Guarded(state, [&state, create_args] { return RunCreate(state, *create_args); });
  });

  auto principal = std::make_shared<std::string>();
  CLI::App* list = tokens->add_subcommand("list", "List tokens (never their text)");
  list->add_option("--principal", *principal, "Only this principal's tokens");
  list->final_callback([&state, principal] {
    state.action = Guarded(state, [&state, principal] { return RunList(state, *principal); });
  });

  auto revoke_id = std::make_shared<std::string>();
  CLI::App* revoke = tokens->add_subcommand("revoke", "Revoke a token; it stops working on the next request");
  revoke->add_option("id", *revoke_id, "Token id (tok_...)")->required();
  revoke->final_callback([&state, revoke_id] {
    state.action = Guarded(state, [&state, revoke_id] { return RunRevoke(state, *revoke_id); });
  });
}

}  // namespace storeplane::cli
