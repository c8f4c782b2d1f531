#!/usr/bin/env bash
# The packaging test (ctest label `package`): builds the .debs with cpack from the build
# directory, installs them with dpkg on this machine, starts systemd as PID 1 of a new PID
# and mount namespace (this machine's PID 1 is not systemd), and proves that the units
# work: storeplaned runs as `storeplane` with NoNewPrivs, answers /healthz, the packaged
# CLI talks to it with the bootstrap token, reload and stop work; shop-agent, as
# `shop-agent` with a drop-in for a stand-in Magento directory, enrolls, heartbeats and
# runs an operation. Then remove keeps the data and purge deletes it.
#
# Needs root. Without it the test is skipped (exit 77), or fails when
# STOREPLANE_REQUIRE_PACKAGE=1 (scripts/test.sh sets it). It refuses to run when the
# packages are already installed, since it purges them at the end.
#
# Usage: package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

build="$(cd "$1" && pwd)"
src="$(cd "$2" && pwd)"
packages=(storeplane-server storeplane-agent storeplane-cli)
started=$(date +%s)

say() { echo "package_test: $*"; }
fail() {
  echo "package_test: FAIL: $*" >&2
  exit 1
}
skip() {
  if [ "${STOREPLANE_REQUIRE_PACKAGE:-0}" = 1 ]; then fail "$* (STOREPLANE_REQUIRE_PACKAGE=1: this test must run)"; fi
  echo "package_test: SKIPPED: $*"
  exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root: it installs the .debs with dpkg and starts systemd in a namespace"
for tool in cpack dpkg dpkg-deb unshare nsenter curl systemd-analyze; do
  command -v "$tool" >/dev/null || skip "needs $tool"
done
[ -x /lib/systemd/systemd ] || skip "needs /lib/systemd/systemd (Debian's systemd package)"
for p in "${packages[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed$\|config-files'; then
    fail "$p is already installed here; this test installs and purges it (dpkg --purge $p first)"
  fi
done
for d in /var/lib/storeplane /var/lib/shop-agent /etc/storeplane /etc/shop-agent; do
  [ ! -e "$d" ] || fail "$d exists; this test would delete it when purging (move it away first)"
done

tmp=""
store_dir=""
unshare_pid=""
sd_pid=""

ns() { nsenter -t "$sd_pid" -m -p "$@"; }

cleanup() {
  local rc=$?
  set +e
  if [ "$rc" -ne 0 ] && [ -n "$sd_pid" ]; then
    echo "--- journalctl -u storeplaned (inside the namespace)" >&2
    ns journalctl -u storeplaned --no-pager >&2
    echo "--- journalctl -u shop-agent (inside the namespace)" >&2
    ns journalctl -u shop-agent --no-pager >&2
  fi
  if [ -n "$sd_pid" ]; then
    # Stopped units remove their private /tmp directories (in this machine's /tmp).
    timeout 40 nsenter -t "$sd_pid" -m -p systemctl stop shop-agent storeplaned >/dev/null 2>&1
    # Killing the namespace's PID 1 kills every process of the namespace with it.
    kill -9 "$sd_pid" 2>/dev/null
  fi
  if [ -n "$unshare_pid" ]; then
    kill -9 "$unshare_pid" 2>/dev/null  # --kill-child: its child, the namespace's PID 1, dies too
    wait "$unshare_pid" 2>/dev/null
  fi
  if [ -n "$sd_pid" ]; then
    for _ in $(seq 1 50); do
      [ -d "/proc/$sd_pid" ] || break
      sleep 0.1
    done
  fi
  rm -f /etc/shop-agent/enrollment.token
  for p in "${packages[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed\|config-files'; then
      dpkg --purge "$p" >/dev/null 2>&1 || echo "package_test: could not purge $p" >&2
    fi
  done
  [ -z "$tmp" ] || rm -rf "$tmp"
  [ -z "$store_dir" ] || rm -rf "$store_dir"
  rm -rf /tmp/systemd-private-*-storeplaned.service-* /tmp/systemd-private-*-shop-agent.service-* \
    /var/tmp/systemd-private-*-storeplaned.service-* /var/tmp/systemd-private-*-shop-agent.service-*
  say "took $(($(date +%s) - started)) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

tmp="$(mktemp -d /tmp/storeplane-package-test.XXXXXX)"
# The stand-in store lives outside /tmp: the agent's unit has a private /tmp.
mkdir -p /srv
store_dir="$(mktemp -d /srv/storeplane-package-test.XXXXXX)"

# --- build the packages -----------------------------------------------------------------
say "cpack -G DEB"
(cd "$build" && cpack -G DEB -B "$tmp/cpack" -D CPACK_OUTPUT_FILE_PREFIX="$tmp/cpack/packages" >"$tmp/cpack.log" 2>&1) || {
  cat "$tmp/cpack.log" >&2
  fail "cpack failed"
}
debs=()
for p in "${packages[@]}"; do
  deb="$(ls "$tmp/cpack/packages/${p}"_*.deb 2>/dev/null | head -1)"
  [ -n "$deb" ] || fail "cpack made no package $p (see $tmp/cpack.log)"
  debs+=("$deb")
done
for deb in "${debs[@]}"; do
  say "$(dpkg-deb -f "$deb" Package Version Depends | tr '\n' ' ')"
done
# Library dependencies come from dpkg-shlibdeps.
for deb in "${debs[@]}"; do
  dpkg-deb -f "$deb" Depends | grep -q 'libc6' || fail "$(basename "$deb"): Depends lacks the shared libraries"
done
dpkg-deb -f "${debs[0]}" Depends | grep -q 'adduser' || fail "storeplane-server must depend on adduser"
contents="$(for deb in "${debs[@]}"; do dpkg-deb -c "$deb"; done)"
for f in ./usr/sbin/storeplaned ./usr/sbin/shop-agent ./usr/bin/storeplane \
  ./usr/lib/systemd/system/storeplaned.service ./usr/lib/systemd/system/shop-agent.service \
  ./etc/storeplane/storeplaned.yaml ./etc/storeplane/policy.yaml ./etc/shop-agent/agent.yaml \
  ./usr/share/bash-completion/completions/storeplane ./usr/share/doc/storeplane-server/examples/storeplaned.yaml; do
  case "$contents" in *" $f"*) ;; *) fail "no $f in the packages" ;; esac
done

# --- install (no systemd running on this machine: nothing may be started) -----------------
say "dpkg -i ${debs[*]##*/}"
dpkg -i "${debs[@]}" >"$tmp/dpkg.log" 2>&1 || {
  cat "$tmp/dpkg.log" >&2
  fail "dpkg -i failed"
}
getent passwd storeplane | grep -q ':/usr/sbin/nologin$' || fail "no storeplane system user"
getent passwd shop-agent >/dev/null || fail "no shop-agent system user"
[ "$(stat -c '%U %a' /var/lib/storeplane)" = "storeplane 700" ] || fail "/var/lib/storeplane: $(stat -c '%U %a' /var/lib/storeplane)"
[ "$(stat -c '%U %a' /var/lib/storeplane/admin.token)" = "storeplane 600" ] || fail "admin.token is not 0600 storeplane"
[ "$(stat -c '%U:%G %a' /etc/storeplane/storeplaned.yaml)" = "root:storeplane 640" ] || fail "storeplaned.yaml: $(stat -c '%U:%G %a' /etc/storeplane/storeplaned.yaml)"
dpkg-query -W -f='${Conffiles}\n' storeplane-server | grep -q '/etc/storeplane/storeplaned.yaml' || fail "storeplaned.yaml is not a conffile"
dpkg-query -W -f='${Conffiles}\n' storeplane-agent | grep -q '/etc/shop-agent/agent.yaml' || fail "agent.yaml is not a conffile"
if pgrep -u storeplane >/dev/null || pgrep -u shop-agent >/dev/null; then fail "installing started a service"; fi
/usr/sbin/storeplaned --version | grep -q storeplaned || fail "storeplaned --version"

# The completion script loads and completes.
words="$(bash --norc --noprofile -c 'source /usr/share/bash-completion/completions/storeplane &&
  COMP_WORDS=(storeplane stores reg) COMP_CWORD=2 && _storeplane && echo "${COMPREPLY[*]}"')"
[ "$words" = "register" ] || fail "bash completion of 'storeplane stores reg' gave '$words'"

# Offline check of the installed units.
for unit in storeplaned shop-agent; do
  systemd-analyze verify "/usr/lib/systemd/system/$unit.service" >"$tmp/verify.log" 2>&1 || {
    cat "$tmp/verify.log" >&2
    fail "systemd-analyze verify $unit.service"
  }
done

# --- systemd as PID 1 of a new PID and mount namespace -------------------------------------
# It must not boot this machine: the file system, the network and the kernel are shared
# (sysinit.target alone would clean /tmp, apply sysctls, start timesyncd...). So it sees
# only the units named here (SYSTEMD_UNIT_PATH): empty stand-ins for the targets the units
# order against, the journal (volatile, in the namespace's own /run), and links to the
# two units the packages installed. Drop-ins go next to them.
units=/run/storeplane-test/units
say "starting systemd in a namespace"
unshare --pid --fork --kill-child --mount --mount-proc --propagation private env UNITS="$units" sh -c '
  set -e
  mount -t tmpfs tmpfs /run
  mkdir -p "$UNITS" /run/systemd/journald.conf.d
  printf "[Journal]\nStorage=volatile\n" >/run/systemd/journald.conf.d/storeplane-test.conf
  for t in sysinit basic sockets network network-online shutdown multi-user; do
    printf "[Unit]\nDescription=%s (empty stand-in of the package test)\n" "$t" >"$UNITS/$t.target"
  done
  printf "[Unit]\nDescription=storeplane package test\nRequires=systemd-journald.socket\nAfter=systemd-journald.socket\n" \
    >"$UNITS/storeplane-test.target"
  cp /lib/systemd/system/systemd-journald.socket /lib/systemd/system/systemd-journald.service "$UNITS/"
  ln -s /usr/lib/systemd/system/storeplaned.service "$UNITS/storeplaned.service"
  ln -s /usr/lib/systemd/system/shop-agent.service "$UNITS/shop-agent.service"
  SYSTEMD_UNIT_PATH="$UNITS" exec /lib/systemd/systemd --system --unit=storeplane-test.target \
    --log-target=console --log-level=notice
' >"$tmp/systemd.log" 2>&1 &
unshare_pid=$!
for _ in $(seq 1 100); do
  sd_pid="$(ps -o pid= --ppid "$unshare_pid" | tr -d ' ' | head -1)"
  [ -n "$sd_pid" ] && break
  sleep 0.1
done
[ -n "$sd_pid" ] || fail "systemd did not start: $(cat "$tmp/systemd.log")"
state=""
for _ in $(seq 1 300); do
  state="$(ns systemctl is-system-running 2>/dev/null || true)"
  case "$state" in running | degraded) break ;; esac
  sleep 0.1
done
case "$state" in running | degraded) ;; *) fail "systemd in the namespace is '$state': $(tail -20 "$tmp/systemd.log")" ;; esac

# Listen on a free port (port 0; the address is read from the journal), never 8750.
ns sh -c "mkdir -p $units/storeplaned.service.d &&
  printf '[Service]\nEnvironment=STOREPLANE_LISTEN=127.0.0.1:0\n' >$units/storeplaned.service.d/test.conf"
ns systemctl daemon-reload
for unit in storeplaned shop-agent; do
  ns systemd-analyze security "$unit.service" --no-pager | tail -1 | sed 's/^/package_test: /'
done
exposure="$(ns systemd-analyze security storeplaned.service --no-pager | sed -n 's/.*exposure level for storeplaned.service: \([0-9.]*\).*/\1/p')"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }' ||
  fail "storeplaned.service exposure is '$exposure' (at most 2.0: keep the unit hardened)"

# --- storeplaned --------------------------------------------------------------------------
say "systemctl start storeplaned"
ns systemctl start storeplaned || fail "systemctl start storeplaned"
addr=""
for _ in $(seq 1 100); do
  addr="$(ns journalctl -u storeplaned -o cat --no-pager 2>/dev/null | sed -n 's/^STOREPLANE_ADDR=//p' | tail -1)"
  [ -n "$addr" ] && break
  [ "$(ns systemctl is-active storeplaned)" = active ] || fail "storeplaned is $(ns systemctl is-active storeplaned)"
  sleep 0.1
done
[ -n "$addr" ] || fail "storeplaned did not report its address"
say "storeplaned listens on $addr"
[ "$(ns systemctl is-active storeplaned)" = active ] || fail "storeplaned is not active"
main_pid="$(ns systemctl show -p MainPID --value storeplaned)"
status="$(ns cat "/proc/$main_pid/status")"
uid="$(id -u storeplane)"
grep -Eq "^Uid:[[:space:]]+$uid[[:space:]]+$uid[[:space:]]+$uid[[:space:]]+$uid\$" <<<"$status" ||
  fail "storeplaned does not run as storeplane: $(grep ^Uid <<<"$status")"
grep -Eq '^NoNewPrivs:[[:space:]]+1$' <<<"$status" || fail "storeplaned runs without NoNewPrivs"
grep -Eq '^CapEff:[[:space:]]+0+$' <<<"$status" || fail "storeplaned holds capabilities: $(grep ^CapEff <<<"$status")"
grep -Eq '^Seccomp:[[:space:]]+2$' <<<"$status" || fail "storeplaned runs without a seccomp filter"
code="$(curl -s -o /dev/null -w '%{http_code}' "$addr/healthz")"
[ "$code" = 200 ] || fail "GET /healthz answered $code"
if ns journalctl --no-pager -o cat | grep -q 'STOREPLANE_TOKEN='; then
  fail "the bootstrap token was printed to the journal"
fi

cli() { STOREPLANE_ADDR="$addr" STOREPLANE_TOKEN_FILE=/var/lib/storeplane/admin.token /usr/bin/storeplane "$@"; }
cli whoami | grep -q admin || fail "the packaged CLI cannot authenticate with the bootstrap token"
cli stores register pkg-test --environment development --isolation-mode shared >/dev/null ||
  fail "storeplane stores register"

say "systemctl reload storeplaned"
ns systemctl reload storeplaned || fail "systemctl reload storeplaned"
for _ in $(seq 1 50); do
  ns journalctl -u storeplaned -o cat --no-pager | grep -q '"policy reloaded"' && break
  sleep 0.1
done
ns journalctl -u storeplaned -o cat --no-pager | grep -q '"policy reloaded"' || fail "no 'policy reloaded' after reload"
[ "$(ns systemctl show -p MainPID --value storeplaned)" = "$main_pid" ] || fail "reload restarted storeplaned"

# --- shop-agent -----------------------------------------------------------------------------
say "shop-agent against a stand-in Magento directory"
cp -a "$src/tests/support/fake_magento" "$store_dir/magento"
mkdir -p "$store_dir/magento/var"
touch "$store_dir/magento/var/.storeplane-cron"
chown -R shop-agent:shop-agent "$store_dir/magento"
chmod 0755 "$store_dir"
cli agents enroll-token pkg-test --ttl 10m >/etc/shop-agent/enrollment.token 2>/dev/null || fail "agents enroll-token"
chgrp shop-agent /etc/shop-agent/enrollment.token
chmod 0640 /etc/shop-agent/enrollment.token
# The documented set-up: the conffile edited for the store, a drop-in giving access to it.
cat >/etc/shop-agent/agent.yaml <<YAML
control_plane_url: $addr
store_id: pkg-test
credential_file: /var/lib/shop-agent/credential
enrollment_token_file: /etc/shop-agent/enrollment.token
state_dir: /var/lib/shop-agent
magento_root: $store_dir/magento
php_binary: $store_dir/magento/php
isolation_mode: shared
allowed_operations: [health.probe, cache.flush, indexer.status, release.report]
checks:
  cron_max_age_s: 86400
YAML
ns sh -c "mkdir -p $units/shop-agent.service.d &&
  printf '[Service]\nReadWritePaths=$store_dir/magento\n' >$units/shop-agent.service.d/store.conf"
ns systemctl daemon-reload
ns systemctl start shop-agent || fail "systemctl start shop-agent"
online=""
for _ in $(seq 1 100); do
  if cli agents list 2>/dev/null | grep pkg-test | grep -q online; then
    online=yes
    break
  fi
  [ "$(ns systemctl is-active shop-agent)" = active ] || fail "shop-agent is $(ns systemctl is-active shop-agent)"
  sleep 0.1
done
[ -n "$online" ] || fail "the agent did not come online: $(cli agents list 2>&1)"
[ -s /var/lib/shop-agent/credential ] || fail "the agent kept no credential"
[ "$(stat -c '%U %a' /var/lib/shop-agent/credential)" = "shop-agent 600" ] || fail "credential is not 0600 shop-agent"
agent_pid="$(ns systemctl show -p MainPID --value shop-agent)"
agent_status="$(ns cat "/proc/$agent_pid/status")"
auid="$(id -u shop-agent)"
grep -Eq "^Uid:[[:space:]]+$auid[[:space:]]" <<<"$agent_status" || fail "shop-agent does not run as shop-agent"
grep -Eq '^NoNewPrivs:[[:space:]]+1$' <<<"$agent_status" || fail "shop-agent runs without NoNewPrivs"
# --wait exits 0 only when the operation succeeded.
cli ops run pkg-test cache.flush --param types=config --wait --timeout 60 >"$tmp/op.log" 2>&1 || {
  cat "$tmp/op.log" >&2
  fail "cache.flush through the agent's unit did not succeed"
}
say "the agent ran cache.flush in the store"

# --- stop ------------------------------------------------------------------------------------
say "systemctl stop shop-agent storeplaned"
ns systemctl stop shop-agent || fail "systemctl stop shop-agent"
ns systemctl stop storeplaned || fail "systemctl stop storeplaned"
for unit in storeplaned shop-agent; do
  state="$(ns systemctl is-active "$unit" || true)"
  [ "$state" = inactive ] || fail "$unit is '$state' after stop"
  result="$(ns systemctl show -p Result --value "$unit")"
  [ "$result" = success ] || fail "$unit stopped with result '$result'"
done
ns journalctl -u storeplaned -o cat --no-pager | grep -q '"exited cleanly"' || fail "storeplaned did not exit cleanly"
if pgrep -u storeplane >/dev/null || pgrep -u shop-agent >/dev/null; then fail "processes left after stop"; fi

# --- installing again (the upgrade path) keeps the data, the token and edited conffiles --------
token_sum="$(sha256sum /var/lib/storeplane/admin.token)"
dpkg -i "${debs[@]}" </dev/null >"$tmp/dpkg2.log" 2>&1 || {
  cat "$tmp/dpkg2.log" >&2
  fail "installing the packages again failed"
}
[ "$(sha256sum /var/lib/storeplane/admin.token)" = "$token_sum" ] || fail "installing again replaced admin.token"
[ -s /var/lib/storeplane/storeplane.db ] || fail "installing again lost the database"
grep -q '^store_id: pkg-test$' /etc/shop-agent/agent.yaml || fail "installing again replaced the edited agent.yaml"

# --- remove keeps the data, purge deletes it -----------------------------------------------
rm -f /etc/shop-agent/enrollment.token
dpkg -r storeplane-server storeplane-agent storeplane-cli >/dev/null 2>&1 || fail "dpkg -r failed"
[ -s /var/lib/storeplane/storeplane.db ] || fail "dpkg -r removed the database"
[ -s /var/lib/shop-agent/credential ] || fail "dpkg -r removed the agent's credential"
[ ! -e /usr/sbin/storeplaned ] || fail "dpkg -r left /usr/sbin/storeplaned"
dpkg --purge storeplane-server storeplane-agent storeplane-cli >/dev/null 2>&1 || fail "dpkg --purge failed"
for d in /var/lib/storeplane /var/lib/shop-agent /etc/storeplane /etc/shop-agent; do
  [ ! -e "$d" ] || fail "dpkg --purge left $d"
done
say "PASS"
