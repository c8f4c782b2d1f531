// /hooks/cicd/{provider}: outcome callbacks from CI/CD pipelines. No bearer token: each
// delivery is authenticated by its HMAC-SHA256 signature over timestamp and raw body with
// the provider's callback secret (two accepted while it is rotated), within 5 minutes
// either way; a delivery id is accepted once, in the same transaction as the transition it
// causes, so replays and concurrent duplicates move a run at most once. Refusals are
// audited.
//
// Body: {"correlation_id": "run_...", "status": "queued|running|succeeded|failed|cancelled",
//        "external_id": "...", "external_url": "...", "schema_changed": false}  (all but the
//        first two optional; a deploy that changed the schema is never rolled back
//        automatically)
#include <boost/json/serialize.hpp>

#include "core/callback_signature.h"
#include "server/api_json.h"
#include "server/app.h"
#include "server/handler_support.h"
#include "server/json_body.h"
#include "server/logging.h"
#include "server/run_coordinator.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxCallbackBytes = 64 * 1024;
constexpr std::int64_t kWindowMs = 5 * 60 * 1000;

std::optional<cicd::ProviderRunStatus> ParseStatus(std::string_view text) {
  if (text == "queued") return cicd::ProviderRunStatus::kQueued;
  if (text == "running") return cicd::ProviderRunStatus::kRunning;
  if (text == "succeeded") return cicd::ProviderRunStatus::kSucceeded;
  if (text == "failed") return cicd::ProviderRunStatus::kFailed;
  if (text == "cancelled") return cicd::ProviderRunStatus::kCancelled;
  return std::nullopt;
}

Result<Response> ReceiveCallback(RequestContext& ctx) {
  const auto& req = ctx.request;
  const auto& provider = ctx.params.at("provider");
  auto* runs = ctx.services.runs;
  if (runs == nullptr || !runs->HasProvider(provider)) return Error::NotFound("no CI/CD provider '" + provider + "'");
  auto refuse = [&](Error error, std::string reason) -> Error {
    auto entry =
        SystemAuditEntry(ctx.now_ms, "callback.refused", "cicd/" + provider, "denied", {{"reason", std::move(reason)}});
    entry.source = req.remote;
    entry.request_id = ctx.request_id;
    entry.decision = "deny";
    entry.rule = "callback-signature";
    if (auto s = ctx.services.repo.AppendAudit(entry, false); !s.ok()) {
      log::Error("audit append failed", {{"request_id", ctx.request_id}, {"detail", s.error().message}});
    }
    return error;
  };
  if (req.body.size() > kMaxCallbackBytes) {
    return Error{ErrorCode::kPayloadTooLarge, "callbacks are limited to 64 KiB", {}};
  }
  const auto* secrets = runs->CallbackSecrets(provider);
  if (secrets == nullptr) {
    return refuse(Error{ErrorCode::kUnauthenticated, "callbacks are not configured for this provider", {}},
                  "no callback secret");
  }
  core::SignatureCheck check;
  check.secrets = *secrets;
  const auto timestamp = req.Header("x-storeplane-timestamp");
  const auto signature = req.Header("x-storeplane-signature");
  check.timestamp_header = timestamp;
  check.signature_header = signature;
  check.body = req.body;
  check.now_ms = ctx.now_ms;
  check.window_ms = kWindowMs;
  if (auto s = core::VerifySignature(check); !s.ok()) return refuse(s.error(), s.error().message);
  const auto delivery = req.Header("x-storeplane-delivery");
  if (auto s = core::ValidateDeliveryId(delivery); !s.ok()) {
    return refuse(Error{ErrorCode::kUnauthenticated, "a valid X-Storeplane-Delivery id is required", {}},
                  "bad delivery id");
  }
  SP_RETURN_IF_ERROR(RequireMediaType(req, {"application/json"}));
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return body.error();
  FieldReader fields(*body);
  SP_RETURN_IF_ERROR(
      fields.RejectUnknown({"correlation_id", "status", "external_id", "external_url", "schema_changed"}));
  if (const auto* schema = body->if_contains("schema_changed"); schema != nullptr && !schema->is_bool()) {
    return Error::Invalid("schema_changed must be true or false", "schema_changed");
  }
  auto correlation = fields.RequiredString("correlation_id");
  if (!correlation.ok()) return correlation.error();
  auto status_text = fields.RequiredString("status");
  if (!status_text.ok()) return status_text.error();
  const auto status = ParseStatus(*status_text);
  if (!status) return Error::Invalid("status must be queued, running, succeeded, failed or cancelled", "status");
  auto external_id = fields.OptionalString("external_id");
  if (!external_id.ok()) return external_id.error();
  auto external_url = fields.OptionalString("external_url");
  if (!external_url.ok()) return external_url.error();
  if (external_id->value_or("").size() > 200 || external_url->value_or("").size() > 500) {
    return Error::Invalid("external_id or external_url is too long", "external_id");
  }

  RunCoordinator::Report report;
  report.run_id = *correlation;
  report.status = *status;
  report.external_id = external_id->value_or("");
  report.external_url = external_url->value_or("");
  report.provider = provider;
  report.delivery_id = delivery;
  if (const auto* schema = body->if_contains("schema_changed")) report.schema_changed = schema->as_bool();
  report.source = req.remote;
  report.request_id = ctx.request_id;
  auto applied = runs->ApplyReport(report);
  if (!applied.ok()) {
    if (applied.error().code == ErrorCode::kAlreadyExists) {
      return refuse(Error{ErrorCode::kConflict, "delivery '" + delivery + "' was already received", {}}, "replay");
    }
    if (applied.error().code == ErrorCode::kPreconditionFailed) {
      return Error{ErrorCode::kUnavailable, "the run is changing; deliver again shortly", {}};
    }
    return applied.error();
  }
  return JsonResponse(200, RunJson(*applied));
}

}  // namespace

void RegisterCicdHookHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("POST", "/hooks/cicd/{provider}")] = ReceiveCallback;
}

}  // namespace storeplane::server
