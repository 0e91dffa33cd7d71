#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages emseg builds against (oneDNN, a C++ toolchain, and the python3 that node-gyp
# runs) and the chromium the viewer's tests drive (playwright-core never downloads a browser) and the redis-server the
# queue tests start privately, only when missing.
set -euo pipefail
need=()
[ -f /usr/include/dnnl.hpp ] || need+=(libdnnl-dev)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v redis-server >/dev/null || need+=(redis-server)
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "emseg setup: missing ${need[*]} and no apt-get here; install oneDNN 2.x (libdnnl-dev) and g++ by hand." >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
  echo "emseg setup: need root or sudo to apt-get install ${need[*]}." >&2
  exit 1
fi
echo "emseg setup: installing ${need[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null; }; then
  echo "emseg setup: apt-get install ${need[*]} failed (see above)." >&2
  exit 1
fi
