#!/usr/bin/env bash
# The Debian packages (config/packaging/ctxd_package.cmake): builds a Release tree for /usr under
# the test build's folder, checks its hardening (with _FORTIFY_SOURCE, which the Debug
# test build lacks), makes the packages with `cpack -G DEB`, checks their contents,
# dependencies and conffiles, unpacks them into a scratch root and runs the unpacked host.
#   tests/package/test_deb.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
tree=$2/package-release
root=$tree/root

fail() { echo "FAIL: $*" >&2; exit 1; }
has() { grep -Eq -- "$2" <<<"$1" || fail "$3"; }

cmake -S "$src" -B "$tree" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DCTXD_BUILD_TESTS=OFF -DCTXD_SANITIZE=OFF >/dev/null
cmake --build "$tree" -j2 >/dev/null

plugins=(datacatalog inventory compensation fulfillment case simulator)
files=()
for p in "${plugins[@]}"; do files+=("$tree/plugins/ctxd_$p.so"); done
bash "$src/tests/package/hardening.sh" --fortify "$tree/runtime/ctxd" "${files[@]}"

rm -f "$tree"/*.deb
(cd "$tree" && cpack -G DEB >/dev/null)
deb=$(ls "$tree"/ctxd_*.deb)
dev=$(ls "$tree"/ctxd-dev_*.deb)

contents=$(dpkg-deb -c "$deb")
has "$contents" ' \./usr/bin/ctxd$' "ctxd: no /usr/bin/ctxd"
for p in "${plugins[@]}"; do
  has "$contents" " \./usr/lib/[^ ]*ctxd/plugins/ctxd_$p\.so$" "ctxd: no plugin $p"
done
has "$contents" ' \./usr/lib/systemd/system/ctxd@\.service$' "ctxd: no systemd unit"
has "$contents" ' \./etc/ctxd/example\.json$' "ctxd: no example configuration"
grep -q 'include/ctxd' <<<"$contents" && fail "ctxd: holds the SDK's headers"

info=$(dpkg-deb -I "$deb")
for lib in libuv1 librabbitmq4 libjansson4 libpq5; do
  has "$info" "^ Depends:.*\b$lib\b" "ctxd: does not depend on $lib"
done
has "$(dpkg-deb -I "$deb" conffiles)" '^/etc/ctxd/example\.json$' "ctxd: example.json is not a conffile"

dev_contents=$(dpkg-deb -c "$dev")
has "$dev_contents" ' \./usr/include/ctxd/ctxd\.h$' "ctxd-dev: no include/ctxd/ctxd.h"
has "$dev_contents" ' \./usr/lib/[^ ]*pkgconfig/ctxd\.pc$' "ctxd-dev: no pkg-config file"
has "$dev_contents" ' \./usr/lib/[^ ]*cmake/ctxd/ctxdConfig\.cmake$' "ctxd-dev: no CMake package"
has "$(dpkg-deb -I "$dev")" '^ Depends: ctxd \(= ' "ctxd-dev: does not depend on ctxd"

rm -rf "$root"
dpkg-deb -x "$deb" "$root"
dpkg-deb -x "$dev" "$root"
has "$(cat "$root/usr/lib/systemd/system/ctxd@.service")" \
  '^ExecStart=/usr/bin/ctxd run --config /etc/ctxd/%i\.json$' "unit: ExecStart is not the packaged host"
has "$("$root/usr/bin/ctxd" version)" '^ctxd [0-9]' "unpacked host: no version"
# the example reads its passwords as systemd credentials
creds=$tree/credentials
mkdir -p "$creds"
printf 'secret\n' >"$creds/amqp"
printf 'secret\n' >"$creds/pg"
out=$(CREDENTIALS_DIRECTORY=$creds "$root/usr/bin/ctxd" check-config --config "$root/etc/ctxd/example.json" 2>&1) ||
  fail "unpacked host: check-config of the example failed: $out"
# the plugin folder was found beside the unpacked host, not in the build tree
has "$out" "datacatalog" "unpacked host: check-config did not load the datacatalog plugin: $out"
echo "packages: $(basename "$deb") ($(stat -c %s "$deb") bytes), $(basename "$dev") ($(stat -c %s "$dev") bytes)"
