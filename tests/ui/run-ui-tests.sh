#!/usr/bin/env bash
# Browser tests of the web UI (issue 7's "Done when"): drives the UI in Debian's Chromium with
# playwright-core against a real storeplaned and a real shop-agent (tests/ui/run.mjs).
# playwright-core is installed at test time from npm into a tools directory outside git
# ($STOREPLANE_TOOLS_DIR, default build/.tools), like scripts/lint-openapi.sh does.
# Without Chromium (or npm) the test is skipped (exit 77), unless STOREPLANE_REQUIRE_BROWSER=1,
# when it fails. STOREPLANE_CHROMIUM names another Chromium binary.
# Usage: run-ui-tests.sh <storeplaned> <shop-agent> <artifacts dir>
set -euo pipefail

PLAYWRIGHT_CORE_VERSION="1.65.2"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools_dir="${STOREPLANE_TOOLS_DIR:-$root/build/.tools}"
prefix="$tools_dir/playwright-core"
chromium="${STOREPLANE_CHROMIUM:-/usr/bin/chromium}"

unavailable() {
  if [[ "${STOREPLANE_REQUIRE_BROWSER:-0}" == "1" ]]; then
    echo "ui-tests: FAIL: $* (STOREPLANE_REQUIRE_BROWSER=1)" >&2
    exit 1
  fi
  echo "ui-tests: SKIP: $* (set STOREPLANE_REQUIRE_BROWSER=1 to make this a failure)" >&2
  exit 77
}

[[ $# -eq 3 ]] || { echo "usage: $0 <storeplaned> <shop-agent> <artifacts dir>" >&2; exit 2; }
[[ -x "$chromium" ]] || unavailable "Chromium is not installed at $chromium (Debian: apt-get install chromium)"
command -v node >/dev/null || unavailable "node is not installed"
command -v npm >/dev/null || unavailable "npm is not installed"
# playwright-core 1.65 needs Node 20 or later (Debian 12's nodejs is 18).
node_major="$(node -p 'process.versions.node.split(".")[0]')"
(( node_major >= 20 )) || unavailable "node $(node --version) is too old for playwright-core (20 or later)"

installed_version() {
  local manifest="$prefix/node_modules/playwright-core/package.json"
  [[ -f "$manifest" ]] || return 0
  node -p 'require(process.argv[1]).version' "$manifest" 2>/dev/null || true
}

mkdir -p "$prefix"
exec 9>"$prefix/.install.lock"
flock 9
if [[ "$(installed_version)" != "$PLAYWRIGHT_CORE_VERSION" ]]; then
  echo "ui-tests: installing playwright-core@$PLAYWRIGHT_CORE_VERSION into $prefix" >&2
  # playwright-core downloads no browser: the tests use Debian's Chromium.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
      --prefix "$prefix" "playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2 \
    || unavailable "npm install of playwright-core@$PLAYWRIGHT_CORE_VERSION failed"
  [[ "$(installed_version)" == "$PLAYWRIGHT_CORE_VERSION" ]] || unavailable "playwright-core did not install"
fi
flock -u 9

exec node "$root/tests/ui/run.mjs" \
  --playwright "$prefix/node_modules/playwright-core" \
  --chromium "$chromium" \
  --storeplaned "$1" --shop-agent "$2" --artifacts "$3" \
  --fake-magento "$root/tests/support/fake_magento" --policy "$root/config/policy.yaml"
