#!/bin/sh
# The pipeline the test Buildbot runs for every storeplane run (builder "store"). It stands
# in for a real deploy: it logs its inputs, works for STOREPLANE_PIPELINE_SLEEP seconds,
# fails when the release starts with "bad-", reports the outcome to storeplane with a signed
# callback when it was given a callback URL and a secret, and exits 0 on success, 1 on
# failure (so a polling-only storeplane sees the same outcome in Buildbot's results).
#
# Inputs (environment, set by master.cfg from the force scheduler's properties):
#   STOREPLANE_CORRELATION_ID  STOREPLANE_STORE_ID  STOREPLANE_ENVIRONMENT
#   STOREPLANE_ISOLATION_MODE  STOREPLANE_KIND  STOREPLANE_RELEASE  STOREPLANE_CALLBACK_URL
#   STOREPLANE_EXTERNAL_ID     "buildset:<bsid>", the run's id as storeplane's adapter names it
#   STOREPLANE_BUILDSET_ID, STOREPLANE_BUILD_NUMBER  the bare numbers
#   STOREPLANE_EXTERNAL_URL    a link to the build
#   STOREPLANE_PIPELINE_SLEEP  seconds to "work" (default 1; fractions allowed)
#   STOREPLANE_CALLBACK_SECRET_FILE  file holding the shared secret (trailing newlines are
#                              not part of it); never in the repository, never logged
#
# ---------------------------------------------------------------------------------------
# The callback contract (what storeplane's /hooks/cicd/{provider} handler must accept)
#
#   POST <callback URL>                     exactly the URL given in the trigger
#   Content-Type: application/json
#   X-Storeplane-Timestamp: <ts>            Unix seconds when it was signed
#   X-Storeplane-Signature: sha256=<hex>    lowercase hex HMAC-SHA256(secret, "<ts>.<raw body>")
#   X-Storeplane-Delivery: <id>             1-128 chars of [A-Za-z0-9._:-], unique per
#                                           delivery; a retry of the same delivery resends the
#                                           same id, timestamp, signature and body
#
#   Body: one JSON object, UTF-8, signed byte for byte as sent:
#     "correlation_id"  string, required   the run's id, as given in the trigger
#     "status"          string, required   "queued" | "running" | "succeeded" | "failed" |
#                                          "cancelled"
#     "external_id"     string, optional   the provider's id of the run, exactly as
#                                          storeplane's adapter names it; for Buildbot
#                                          "buildset:<bsid>" (the force call's buildset)
#     "external_url"    string, optional   a link for operators
#     "schema_changed"  boolean, optional  whether the run changed the store's database
#                                          schema (known once the run has finished)
#   storeplane refuses members it does not know (422). This pipeline sends one callback per build,
#   with the final status; e.g.
#     {"correlation_id":"run_4f1c","status":"succeeded","external_id":"buildset:7",
#      "external_url":"http://127.0.0.1:8010/#/builders/1/builds/7","schema_changed":false}
#   (on one line). schema_changed is true when the release starts with "schema-".
#
#   Answers: any 2xx means accepted; 409 means the delivery id was already received (a
#   retry of an attempt that did arrive: nothing to do). The pipeline retries up to 3 times,
#   1 s apart, on a refused connection, a timeout, 408, 429 and 5xx, and never on other
#   4xx (a wrong signature will not become right).
# ---------------------------------------------------------------------------------------
set -u

log() { printf 'pipeline: %s\n' "$*"; }

# JSON string contents: backslashes and quotes escaped, control characters dropped.
json_escape() { printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }

correlation_id=${STOREPLANE_CORRELATION_ID:-}
release=${STOREPLANE_RELEASE:-}
callback_url=${STOREPLANE_CALLBACK_URL:-}
secret_file=${STOREPLANE_CALLBACK_SECRET_FILE:-}
external_id=${STOREPLANE_EXTERNAL_ID:-}
external_url=${STOREPLANE_EXTERNAL_URL:-}
pause=${STOREPLANE_PIPELINE_SLEEP:-1}

log "correlation_id=$correlation_id"
log "store_id=${STOREPLANE_STORE_ID:-}"
log "environment=${STOREPLANE_ENVIRONMENT:-}"
log "isolation_mode=${STOREPLANE_ISOLATION_MODE:-}"
log "kind=${STOREPLANE_KIND:-}"
log "release=$release"
log "callback_url=$callback_url"
log "external_id=$external_id external_url=$external_url"

case $pause in
  '' | *[!0-9.]*) log "STOREPLANE_PIPELINE_SLEEP is not a number: $pause; using 1"; pause=1 ;;
esac
sleep "$pause"

case $release in
  bad-*) status=failed; code=1 ;;
  *) status=succeeded; code=0 ;;
esac
case $release in
  schema-*) schema_changed=true ;;
  *) schema_changed=false ;;
esac
log "status=$status"

# The stand-in deployment: with a site root, a successful deploy or rollback writes the
# release marker the shop agent reports. An "unhealthy-" release deploys but leaves the
# store in maintenance mode, so that it never looks healthy (its health gate fails); any
# other release takes the store out of maintenance.
site_root=${STOREPLANE_SITE_ROOT:-}
kind=${STOREPLANE_KIND:-}
if [ -n "$site_root" ] && [ "$status" = succeeded ] && { [ "$kind" = deploy ] || [ "$kind" = rollback ]; }; then
  mkdir -p "$site_root/var"
  printf '%s\n' "$release" >"$site_root/.storeplane-release"
  case $release in
    unhealthy-*) : >"$site_root/var/.maintenance.flag" ;;
    *) rm -f "$site_root/var/.maintenance.flag" ;;
  esac
  log "deployed $release to the site root"
fi

if [ -z "$callback_url" ] || [ -z "$secret_file" ]; then
  log "no callback URL or secret file: not calling back"
  exit "$code"
fi
if ! secret=$(cat -- "$secret_file" 2>/dev/null) || [ -z "$secret" ]; then
  log "cannot read the callback secret file (or it is empty): not calling back"
  exit "$code"
fi

body='{"correlation_id":"'$(json_escape "$correlation_id")'","status":"'$status'"'
[ -n "$external_id" ] && body=$body',"external_id":"'$(json_escape "$external_id")'"'
[ -n "$external_url" ] && body=$body',"external_url":"'$(json_escape "$external_url")'"'
body=$body',"schema_changed":'$schema_changed'}'

ts=$(date +%s)
signature=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.*= *//')
unset secret
nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
delivery="buildbot-${STOREPLANE_BUILDSET_ID:-0}-${STOREPLANE_BUILD_NUMBER:-0}-$ts-$nonce"

body_file=$(mktemp) || exit "$code"
trap 'rm -f "$body_file"' EXIT
printf '%s' "$body" >"$body_file"

log "callback: POST $callback_url delivery=$delivery body=$body"
if http_code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --connect-timeout 5 \
  --retry 3 --retry-delay 1 --retry-connrefused \
  -H 'Content-Type: application/json' \
  -H "X-Storeplane-Timestamp: $ts" \
  -H "X-Storeplane-Signature: sha256=$signature" \
  -H "X-Storeplane-Delivery: $delivery" \
  --data-binary "@$body_file" -- "$callback_url"); then
  case $http_code in
    2??) log "callback accepted (HTTP $http_code)" ;;
    *) log "callback refused (HTTP $http_code)" ;;
  esac
else
  log "callback failed (curl exit $?)"
fi
exit "$code"
