#!/usr/bin/env bash
# Installs what cscopilot needs from Debian's packages, only what is missing.
# Quick (a dpkg query) when everything is already there.
#   contrib/install-deps.sh          build, test and demo dependencies
#   contrib/install-deps.sh --bench  also what `make bench` compares against
#   contrib/install-deps.sh --fuzz   also clang with libFuzzer and the sanitizers (make fuzz, make asan)
set -euo pipefail

# chromium (headless) renders the digest in test/t/095_digest_render.pl; python3
# decodes its screenshot.  chromium adds about a minute to a first install.
PKGS=(postgresql-15 postgresql-server-dev-15 postgresql-contrib libxgboost-dev libjansson-dev
      libipc-run-perl make gcc chromium python3)
if [ "${1:-}" = "--bench" ]; then
    PKGS+=(python3-xgboost python3-psycopg2 python3-numpy postgresql-plpython3-15)
fi
if [ "${1:-}" = "--fuzz" ]; then
    PKGS+=(clang libclang-rt-dev python3)
fi

missing=()
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "cscopilot: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "cscopilot: run as root or install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be absent or stale on a fresh machine.
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "cscopilot: dependencies installed"
