#!/usr/bin/env bash
# Installs the Debian packages ctxd needs to build, test and run, and only the missing
# ones: when everything is present it does nothing (no apt-get update, no root needed).
set -euo pipefail

packages=(
  gcc make cmake pkg-config
  librabbitmq-dev libuv1-dev libjansson-dev libpq-dev libcmocka-dev libhttp-parser-dev libssl-dev
  openssl
  rabbitmq-server postgresql
  amqp-tools procps
  iproute2 nftables
  gnuplot-nox
  clang libclang-rt-14-dev clang-format
  binutils dpkg-dev systemd
  chromium
)
# the browser tests (tests/browser) run on node; Debian's own only when there is none
command -v node >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "ctxd: installing missing packages: ${missing[*]}" >&2
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "ctxd: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
