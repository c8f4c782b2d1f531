#!/usr/bin/env bash
# Installs the Debian 12 packages storeplane needs to build, run and test, skipping the
# ones already present. Needs root (or sudo). Safe to run repeatedly.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates openssl curl
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev sqlite3 libcurl4-openssl-dev
  libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  clang-format clang-tidy clang libclang-rt-14-dev
  buildbot buildbot-worker
  dpkg-dev systemd adduser util-linux
  prometheus-cpp-dev prometheus
  postgresql libpq-dev
  chromium
)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
