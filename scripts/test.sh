#!/usr/bin/env bash
# The test command (README, and CI through .ci/run): installs what the tests need on a
# Debian machine (apt packages when missing, a venv with the test extras), runs the linters
# and the import contracts, then the suite. Arguments go to pytest (`bash scripts/test.sh
# tests/unit` runs one folder). Exits non-zero on any failure, including a run that
# collected no test (pytest's exit 5).
#
# Two builds of the hot path (docs/compiled.md): the install compiles it with mypyc (and
# fails if it cannot, unless PROXYNOW_PURE_PYTHON=1), the suite runs against that, then
# again against pure Python (PROXYNOW_PURE_PYTHON=1, same install) as PROXYNOW_TEST_PURE says:
#   fast (default)  tests/unit and tests/transport, and every `patches_hot_path` test
#                   (about 2 minutes more)
#   full            the same arguments again (the whole suite twice: about 10 minutes more)
#   off             no pure-Python pass
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(curl wrk nginx pebble docker.io busybox-static chromium debootstrap docker-compose libnghttp2-14)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: missing packages (${missing[*]}); run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# shellcheck disable=SC1091
source .venv/bin/activate
python -m pip install -q --upgrade pip
pure_mode="${PROXYNOW_TEST_PURE:-fast}"
case "$pure_mode" in fast | full | off) ;; *)
  echo "scripts/test.sh: PROXYNOW_TEST_PURE is fast, full or off, not '$pure_mode'" >&2
  exit 1
  ;;
esac
if [ -n "${PROXYNOW_PURE_PYTHON:-}" ] && [ "${PROXYNOW_PURE_PYTHON}" != 0 ]; then
  python -m pip install -q -e '.[test]'
else
  PROXYNOW_REQUIRE_COMPILED=1 python -m pip install -q -e '.[test]'
  case "$(proxynow version)" in *"hot path: compiled"*) ;; *)
    echo "scripts/test.sh: the install did not run compiled: $(proxynow version)" >&2
    exit 1
    ;;
  esac
fi

ruff check proxynow tests bench
ruff format --check proxynow tests bench
mypy
lint-imports --no-cache

# pytest, where collecting nothing fails too (exit 5).
run_pytest() {
  local rc=0
  pytest -q "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "scripts/test.sh: pytest collected no tests ($*)" >&2
    rc=1
  fi
  return "$rc"
}

rc=0
run_pytest "$@" || rc=$?
# (After a pure install the run above was the pure one.)
if [ "$pure_mode" != off ] && [[ "$(proxynow version)" == *"hot path: compiled"* ]]; then
  export PROXYNOW_PURE_PYTHON=1
  echo "scripts/test.sh: again against pure Python ($pure_mode): $(proxynow version | tail -1)"
  if [ "$pure_mode" = full ]; then
    run_pytest "$@" || rc=$?
  else
    run_pytest tests/unit tests/transport || rc=$?
    run_pytest -m patches_hot_path || rc=$?
  fi
fi
exit "$rc"
