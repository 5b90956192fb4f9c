#!/usr/bin/env bash
# The test command (README, and CI through .ci/run): installs what the tests need on a
# Debian machine (apt packages when missing, a venv with the test extras), runs the linters
# and the import contracts, then the suite. Arguments go to pytest (`bash scripts/test.sh
# tests/unit` runs one folder). Exits non-zero on any failure, including a run that
# collected no test (pytest's exit 5).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(curl wrk nginx pebble docker.io busybox-static chromium debootstrap docker-compose)
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
python -m pip install -q -e '.[test]'

ruff check proxynow tests bench
ruff format --check proxynow tests bench
mypy
lint-imports --no-cache

set +e
pytest -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
