// Small pieces shared by the resource handlers: loading a store the caller may see,
// Idempotency-Key checks and replays, and audit entries for actions the server or an agent
// performs on its own.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/audit.h"
#include "core/result.h"
#include "core/store.h"
#include "db/repository.h"
#include "server/app.h"
#include "server/http_types.h"

namespace storeplane::server {

Error NoSuchStore(std::string_view id);
// Loads a store the caller may read; a store outside the caller's scope does not exist
// (404), and the refusal is recorded as a store.read denial.
Result<core::Store> LoadVisibleStore(RequestContext& ctx, const std::string& id);
// The same for a route whose action is `action`: the store exists for a caller who may
// read it or may perform `action` on it (a security-admin revoking an agent need not read
// the registry).
Result<core::Store> LoadStoreFor(RequestContext& ctx, const std::string& id, std::string_view action);
// Decides `action` on `store` for the caller: kPermissionDenied when not allowed, and
// kConflict when an approval rule covers it, since only registry changes can wait for
// approval yet (fail closed: nothing runs unapproved).
Status AuthorizeWithoutApproval(RequestContext& ctx, std::string_view action, const core::Store& store);

Status ValidateIdempotencyKey(std::string_view key);
// The remembered answer to a POST, marked Idempotent-Replayed.
Response Replay(const db::IdempotencyRecord& rec);

// 202 with a new pending change request: the route's action on `store` waits for the
// approval rule of the last decision. The request, its audit record and the idempotency
// record commit together; `request_body` is what runs when the change is approved.
Result<Response> RequestApproval(RequestContext& ctx, const core::Store& store, std::string request_body,
                                 std::optional<db::IdempotencyRecord> idem);
// The same for an explicit rule (break-glass), with `audit_params` added to the audit
// record (whitelisted values only).
Result<Response> RequestApproval(RequestContext& ctx, const core::Store& store, std::string request_body,
                                 std::optional<db::IdempotencyRecord> idem, const core::ApprovalRule& rule,
                                 const std::map<std::string, std::string>& audit_params);
// The same for a change built by the caller (a rollout's, about an environment): 202 with
// it, its audit record on `audit_target` and the idempotency record, in one transaction.
Result<Response> RecordChangeRequest(RequestContext& ctx, db::ChangeRequest change, const std::string& audit_target,
                                     std::optional<db::IdempotencyRecord> idem,
                                     const std::map<std::string, std::string>& audit_params);

// The Idempotency-Key of a POST: no record when the header is absent; a record to store
// with the change (answer `status`) for a new key; the remembered answer for a key used
// with the same request; a 422 problem for a key used with another request.
struct IdempotencyCheck {
  std::optional<db::IdempotencyRecord> record;
  std::optional<Response> answer;  // set: send it and do nothing else
};
Result<IdempotencyCheck> CheckIdempotencyKey(RequestContext& ctx, int status);
// After a failed Apply: when a concurrent twin with the same key won, its answer.
std::optional<Response> ReplayTwin(RequestContext& ctx, const std::optional<db::IdempotencyRecord>& record,
                                   const Error& error);

// An object-scoped list: reads pages through `fetch(cursor)` (each of at most `wanted`
// items, in the route's order, the cursor "" first and then the id of a page's last item)
// and keeps the items `visible` lets the caller see, until `wanted` are kept or the pages end
// (at most 20 pages). `next` is the id of the last item kept when more may follow, else "".
template <typename Item>
struct VisiblePage {
  std::vector<Item> items;
  std::string next;
};
template <typename Item, typename Fetch, typename Visible, typename IdOf>
Result<VisiblePage<Item>> CollectVisible(int wanted, Fetch fetch, Visible visible, IdOf id_of) {
  VisiblePage<Item> out;
  std::string cursor;
  for (int guard = 0; guard < 20 && static_cast<int>(out.items.size()) < wanted; ++guard) {
    Result<std::vector<Item>> page = fetch(cursor);
    if (!page.ok()) return page.error();
    for (auto& item : *page) {
      if (static_cast<int>(out.items.size()) < wanted && visible(item)) {
        out.next = id_of(item);
        out.items.push_back(std::move(item));
      }
    }
    if (static_cast<int>(page->size()) < wanted) {
      out.next.clear();
      break;
    }
    cursor = id_of(page->back());
  }
  return out;
}

// An audit entry for an action nobody requested through the operator API: "system" (the
// server) or "agent:<store>" as principal, allowed by rule "system" or "agent-credential".
core::AuditEntry SystemAuditEntry(std::int64_t now_ms, std::string action, std::string target, std::string outcome,
                                  std::map<std::string, std::string> params);
core::AuditEntry AgentAuditEntry(std::int64_t now_ms, const std::string& store_id, std::string source,
                                 std::string request_id, std::string action, std::string outcome,
                                 std::map<std::string, std::string> params);

}  // namespace storeplane::server
