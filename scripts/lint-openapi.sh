#!/usr/bin/env bash
# Lints docs/openapi.yaml with Redocly CLI (rules in docs/redocly.yaml) and exits non-zero
# on any problem, warnings included. Redocly CLI is installed on first use from npm into a
# tools directory outside git (never committed): $STOREPLANE_TOOLS_DIR, default build/.tools.
set -euo pipefail

REDOCLY_CLI_VERSION="2.77.0"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${STOREPLANE_TOOLS_DIR:-$root/build/.tools}"
# One npm prefix per tool: `npm install --no-save` prunes whatever the prefix's (absent)
# package.json does not name, so tools sharing a prefix would uninstall each other.
prefix="$tools_dir/redocly-cli"
redocly="$prefix/node_modules/.bin/redocly"
spec="${1:-$root/docs/openapi.yaml}"  # an argument lints another file (for testing the script)
config="$root/docs/redocly.yaml"

die() { echo "lint-openapi: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is required (Debian: apt-get install nodejs)"
command -v npm >/dev/null || die "npm is required (Debian: apt-get install npm)"

installed_version() {
  local manifest="$prefix/node_modules/@redocly/cli/package.json"
  [[ -f "$manifest" ]] || return 0
  node -p 'require(process.argv[1]).version' "$manifest" 2>/dev/null || true
}

mkdir -p "$prefix"
# Serialise installs: ctest may run this script from several build trees at once.
exec 9>"$prefix/.install.lock"
flock 9
if [[ "$(installed_version)" != "$REDOCLY_CLI_VERSION" || ! -x "$redocly" ]]; then
  echo "lint-openapi: installing @redocly/cli@$REDOCLY_CLI_VERSION into $prefix" >&2
  npm install --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
      --prefix "$prefix" "@redocly/cli@$REDOCLY_CLI_VERSION" >&2 \
    || die "npm install of @redocly/cli@$REDOCLY_CLI_VERSION failed"
  [[ "$(installed_version)" == "$REDOCLY_CLI_VERSION" ]] || die "@redocly/cli did not install"
fi
flock -u 9

# No telemetry and no update checks: the lint must not depend on anything but its input.
export REDOCLY_TELEMETRY=off
export REDOCLY_SUPPRESS_UPDATE_NOTICE=true

output_file="$(mktemp)"
trap 'rm -f "$output_file"' EXIT
status=0
"$redocly" lint --config "$config" "$spec" >"$output_file" 2>&1 || status=$?
cat "$output_file"

if (( status != 0 )); then
  die "${spec#"$root"/} has lint errors (redocly exit status $status)"
fi
# The ruleset is strict (every rule is an error), but fail on any warning all the same.
if grep -Eq '(^|[^0-9])[1-9][0-9]* warnings?([^a-z]|$)' "$output_file"; then
  die "${spec#"$root"/} has lint warnings"
fi
echo "lint-openapi: ${spec#"$root"/} is clean (@redocly/cli $REDOCLY_CLI_VERSION)"
