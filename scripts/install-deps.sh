#!/usr/bin/env bash
# Installs with apt-get whatever building and testing ipx needs, when it is
# missing.  `make` calls this; a fresh Debian 12 machine needs nothing else.
#   install-deps.sh            build and test tools
#   install-deps.sh --check    exit 0 if nothing is missing, 1 otherwise
#   install-deps.sh --bench    also Boost headers (the benchmarks' other side)
#   install-deps.sh --fuzz     also clang's libFuzzer runtime
set -eu
mode=${1:-}

need_cmds="cmake make gcc g++ clang valgrind pkg-config nm objdump"
pkgs_for() { # command -> Debian package
  case $1 in
    cmake) echo cmake ;; make) echo make ;; gcc) echo gcc ;; g++) echo g++ ;;
    clang) echo clang ;; valgrind) echo valgrind ;; pkg-config) echo pkg-config ;;
    nm|objdump) echo binutils ;;
  esac
}

missing=""
for c in $need_cmds; do
  command -v "$c" >/dev/null 2>&1 || missing="$missing $(pkgs_for "$c")"
done
# libc6-dev and the sanitizer runtimes come with gcc; util-linux gives unshare.
command -v unshare >/dev/null 2>&1 || missing="$missing util-linux"
if [ "$mode" = "--bench" ] && [ ! -f /usr/include/boost/interprocess/sync/interprocess_mutex.hpp ]; then
  missing="$missing libboost-dev"
fi
if [ "$mode" = "--fuzz" ] && ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  missing="$missing libclang-rt-14-dev"
fi

if [ -z "$missing" ]; then exit 0; fi
if [ "$mode" = "--check" ]; then
  echo "missing:$missing"; exit 1
fi

echo "install-deps: installing$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
