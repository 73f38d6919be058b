#!/usr/bin/env bash
# Installs Debian's Chromium (and a font for the page's text) for the browser test,
# tests/test_browser.py, when /usr/bin/chromium is missing and apt can be used without a password
# (root, or sudo -n). It never fails: where Chromium cannot be installed the browser test skips,
# and everything else works without it. Run by `make setup`.
set -u
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
skip() {
    echo "facetalk setup: $1; tests/test_browser.py will be skipped (install Debian's chromium to run it)"
    exit 0
}
command -v apt-get >/dev/null 2>&1 || skip "no apt-get on this machine"
if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    skip "installing Chromium needs root or password-less sudo"
fi
packages=(chromium fonts-dejavu-core)
log="$(mktemp)"
echo "facetalk setup: installing ${packages[*]} with apt-get for the browser test (log: $log)"
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}" >"$log" 2>&1; then
    # The package lists may be missing or stale on a fresh machine: refresh them once and retry.
    "${as_root[@]}" apt-get update -q >>"$log" 2>&1
    "${as_root[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}" >>"$log" 2>&1 \
        || skip "apt-get could not install Chromium (see $log)"
fi
[ -x /usr/bin/chromium ] || skip "apt-get ran but /usr/bin/chromium is still missing (see $log)"
rm -f "$log"
echo "facetalk setup: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) installed"
