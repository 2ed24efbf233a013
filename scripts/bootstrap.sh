#!/usr/bin/env bash
# bootstrap.sh [run|test]: installs the Debian/Ubuntu packages earshot needs, only
# those missing. `run` needs the whisper.cpp build tools (cmake, clang/libclang for
# bindgen); `test` also needs redis-server, which the tests start themselves on free
# ports (they never use a Redis someone else started), chromium + chromedriver for
# the web app's browser tests, and espeak-ng + sox for speech made at test time.
set -euo pipefail
mode=${1:-run}

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v clang >/dev/null 2>&1 || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
if [ "$mode" = test ]; then
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
  # The web app's tests drive a real headless browser over WebDriver.
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
  # Speech in other languages, names the shared clips do not have, and words at known
  # positions (word timing) are made at test time: espeak-ng speaks, sox joins and resamples.
  command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
  command -v sox >/dev/null 2>&1 || need+=(sox)
  # The TLS tests make a throwaway CA and certificates with the openssl CLI.
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
fi
[ ${#need[@]} -eq 0 ] && exit 0

echo "bootstrap: installing ${need[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "bootstrap: need root (or sudo) to apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The packaged redis-server may start a system instance; the tests do not use it.
