// The generic webhook adapter: for any CI/CD system that is not one of the named ones, a
// small receiver in front of it speaks this contract (signed JSON in, JSON status out).
//
// Trigger: POST <base_url>
//   Content-Type: application/json
//   User-Agent: storeplane
//   X-Storeplane-Timestamp: <Unix seconds>
//   X-Storeplane-Signature: sha256=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
//   X-Storeplane-Delivery: <correlation id>
//   {"correlation_id": "run_<hex>", "store_id": "...", "environment": "...",
//    "isolation_mode": "shared|dedicated|isolated", "kind": "provision|deploy|rollback|
//    decommission|isolation_migration", "release": "..." (may be empty), "callback_url": "..."}
//   (exactly these seven string fields, in this order). The receiver verifies the signature
//   (core::VerifySignature does), refuses a timestamp outside its window, and must treat a
//   delivery id it has seen as the same trigger again: storeplane re-sends a trigger it is
//   not sure arrived (after a crash or a timeout), so a repeat must answer 2xx without
//   starting a second pipeline. Any 2xx is "accepted"; a JSON object answer may name
//   {"external_id": "...", "external_url": "..."} (strings or numbers), anything else is
//   ignored. 401/403 = the signature was refused, other 4xx = never retry, 429/5xx = retry
//   later.
//
// Status: GET <status_url>/<correlation id>   (status_url = settings.status_url, default
//   <base_url>/runs), with the same timestamp and signature headers computed over an empty
//   body, and X-Storeplane-Delivery: "status.<correlation id>.<Unix milliseconds>" (unique
//   per request, so a receiver that keeps delivery ids accepts every poll). Answers:
//   404 = no such run (yet); 200 {"status": "queued|running|succeeded|failed|cancelled",
//   "external_id": "..." (optional), "external_url": "..." (optional)}. Any other status
//   value, or a body that is not such an object, is an error (kUnavailable: retried later).
//
// Config: base_url (required), secret_file or secret_env (required), settings.status_url
// (optional, absolute http(s) URL). No token.
#pragma once

#include <memory>
#include <string>

#include "cicd/adapter_support.h"
#include "cicd/provider.h"
#include "core/result.h"

namespace storeplane::cicd {

Result<std::unique_ptr<Provider>> MakeWebhookProvider(AdapterBasics basics, const ProviderConfig& config);

}  // namespace storeplane::cicd
