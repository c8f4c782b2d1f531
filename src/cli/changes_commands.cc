#include "cli/changes_commands.h"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <memory>

#include "cli/output.h"

namespace storeplane::cli {
namespace {

namespace json = boost::json;

std::string ChangePath(const std::string& id) { return "/v1/changes/" + PercentEncode(id); }

// "bob,carol" from the "approvers" array, or "<none>".
std::string ApproversText(const json::object& change) {
  std::string text;
  if (auto it = change.find("approvers"); it != change.end() && it->value().is_array()) {
    for (const auto& approver : it->value().as_array()) {
      if (!text.empty()) text += ",";
      text += approver.is_string() ? std::string(approver.as_string()) : json::serialize(approver);
    }
  }
  return text.empty() ? "<none>" : text;
}

size_t ApprovalsGiven(const json::object& change) {
  auto it = change.find("approvers");
  return (it != change.end() && it->value().is_array()) ? it->value().as_array().size() : 0;
}

std::string ApprovalsText(const json::object& change) {
  return std::to_string(ApprovalsGiven(change)) + "/" + CellText(change, "approvals_needed");
}

// Expects a Change object in a 2xx reply.
bool IsChange(const json::value& value) { return value.is_object() && value.as_object().contains("id"); }

// --- changes list ---------------------------------------------------------------------

int RunList(CliState& state, const std::string& status) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "GET", WithQuery("/v1/changes", {{"status", status}}));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& listing = std::get<JsonReply>(reply).body;
    auto it = listing.as_object().find("items");
    if (it == listing.as_object().end() || !it->value().is_array()) {
      return UnexpectedResponse(state, "the change list has no \"items\" array");
    }
    const json::array& items = it->value().as_array();
    Print(state, FormatOf(session), listing, [&] {
      if (items.empty()) return std::string("No changes found.\n");
      return ChangesTable(items);
    });
    return static_cast<int>(kExitOk);
  });
}

// --- changes get / approve / reject ---------------------------------------------------

int RunGet(CliState& state, const std::string& id) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "GET", ChangePath(id));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& change = std::get<JsonReply>(reply).body;
    Print(state, FormatOf(session), change, [&] { return ChangeDetails(change.as_object()); });
    return static_cast<int>(kExitOk);
  });
}

// After approve: what happened, in one line.
std::string ApprovedText(const json::object& change) {
  std::string id = CellText(change, "id");
  std::string status = CellText(change, "status");
  if (status == "pending") {
    return "change " + id + " approved (" + ApprovalsText(change) + " approvals); still pending\n";
  }
  std::string line = "change " + id + " approved: " + status;
  if (auto it = change.find("outcome");
      it != change.end() && it->value().is_string() && !it->value().as_string().empty()) {
    line += " (" + OneLine(it->value().as_string()) + ")";
  }
  return line + "\n";
}

int RunDecision(CliState& state, const std::string& id, bool approve, const std::optional<std::string>& reason) {
  return WithSession(state, [&](ApiSession& session) {
    json::object body;
    if (reason) body["reason"] = *reason;
    auto reply =
        CallJson(state, session, "POST", ChangePath(id) + (approve ? "/approve" : "/reject"), json::serialize(body));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& change = std::get<JsonReply>(reply).body;
    Print(state, FormatOf(session), change, [&] {
      if (approve) return ApprovedText(change.as_object());
      return "change " + CellText(change.as_object(), "id") + " rejected\n";
    });
    // The action itself may have failed after the approval was accepted: that is the
    // server's failure to report, with the change's outcome as the reason.
    if (approve && CellText(change.as_object(), "status") == "failed") {
      *state.err << ErrorLine("approved change failed", "change " + id + ": " + CellText(change.as_object(), "outcome"))
                 << "\n";
      return static_cast<int>(kExitServerError);
    }
    return static_cast<int>(kExitOk);
  });
}

}  // namespace

std::string ChangesTable(const json::array& changes) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : changes) {
    if (!item.is_object()) continue;
    const auto& change = item.as_object();
    rows.push_back({CellText(change, "id"), CellText(change, "action"), CellText(change, "target"),
                    CellText(change, "environment"), CellText(change, "requester"), CellText(change, "status"),
                    ApprovalsText(change), CellText(change, "expires_at")});
  }
  return RenderTable({"CHANGE", "ACTION", "TARGET", "ENVIRONMENT", "REQUESTER", "STATUS", "APPROVALS", "EXPIRES"},
                     rows);
}

std::string ChangeDetails(const json::object& change) {
  std::string request = "<none>";
  if (auto it = change.find("request"); it != change.end() && !it->value().is_null()) {
    request = json::serialize(it->value());
  }
  return RenderFields({{"id", CellText(change, "id")},
                       {"action", CellText(change, "action")},
                       {"target", CellText(change, "target")},
                       {"environment", CellText(change, "environment")},
                       {"requester", CellText(change, "requester")},
                       {"status", CellText(change, "status")},
                       {"approval rule", CellText(change, "approval_rule")},
                       {"approvals", ApprovalsText(change)},
                       {"approvers", ApproversText(change)},
                       {"outcome", CellText(change, "outcome")},
                       {"created", CellText(change, "created_at")},
                       {"expires", CellText(change, "expires_at")},
                       {"version", CellText(change, "version")},
                       {"request", request}});
}

int ReportPendingChange(const CliState& state, OutputFormat format, const json::value& change) {
  if (!IsChange(change)) return UnexpectedResponse(state, "202 Accepted without a change request in the body");
  const json::object& object = change.as_object();
  Print(state, format, change, [&] { return ChangeDetails(object); });
  std::string note = "approval required: change " + CellText(object, "id") + " is " + CellText(object, "status");
  std::string needed = CellText(object, "approvals_needed");
  if (needed != "<none>") note += " (" + needed + " approval" + (needed == "1" ? "" : "s") + " needed)";
  *state.err << "storeplane: " << OneLine(note) << "\n";
  return static_cast<int>(kExitOk);
}

void AddChangesCommands(CLI::App& root, CliState& state) {
  CLI::App* changes = root.add_subcommand("changes", "List, inspect, approve and reject change requests");
  changes->require_subcommand(1);

  auto status = std::make_shared<std::string>();
  CLI::App* list = changes->add_subcommand("list", "List change requests");
  list->add_option("--status", *status, "Only changes in this status")
      ->check(CLI::IsMember({"pending", "executed", "rejected", "expired", "failed"}));
  list->final_callback(
      [&state, status] { state.action = Guarded(state, [&state, status] { return RunList(state, *status); }); });

  auto get_id = std::make_shared<std::string>();
  CLI::App* get = changes->add_subcommand("get", "Show one change request");
  get->add_option("id", *get_id, "Change id (chg_...)")->required();
  get->final_callback(
      [&state, get_id] { state.action = Guarded(state, [&state, get_id] { return RunGet(state, *get_id); }); });

  auto approve_id = std::make_shared<std::string>();
  CLI::App* approve = changes->add_subcommand("approve", "Approve a pending change (not your own)");
  approve->add_option("id", *approve_id, "Change id (chg_...)")->required();
  approve->footer(
      "With enough approvals the server runs the action, once. Exits 4 when you requested\n"
      "the change or may not approve it, 5 when it is no longer pending or has expired,\n"
      "1 when the approved action failed.");
  approve->final_callback([&state, approve_id] {
    state.action = Guarded(state, [&state, approve_id] { return RunDecision(state, *approve_id, true, std::nullopt); });
  });

  auto reject_id = std::make_shared<std::string>();
  auto reason = std::make_shared<std::optional<std::string>>();
  CLI::App* reject = changes->add_subcommand("reject", "Reject a pending change");
  reject->add_option("id", *reject_id, "Change id (chg_...)")->required();
  reject->add_option("--reason", *reason, "Why (kept with the change and in the audit trail)");
  reject->final_callback([&state, reject_id, reason] {
    state.action =
        Guarded(state, [&state, reject_id, reason] { return RunDecision(state, *reject_id, false, *reason); });
  });
}

}  // namespace storeplane::cli
