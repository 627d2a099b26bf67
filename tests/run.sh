#!/usr/bin/env bash
# One command from a fresh machine to a full test run: installs what the suite needs, then lint, types, tests.
# Idempotent and cached: a second run only re-checks.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
# Bytecode compiled once at install: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every
# process of the suite would otherwise compile its imports from source again (~0.7 s each).
.venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python -r requirements.lock
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
.venv/bin/python -m compileall -q mnemo_otel testkit benchmarks >/dev/null

# Prometheus and promtool (Debian's package) for the alert-rule and end-to-end tests; amtool
# (Alertmanager's package) checks the notification policy tree.
if ! command -v promtool >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    prometheus prometheus-alertmanager >/dev/null
  # The packages start system services we do not want; tests run their own instances.
  for service in prometheus prometheus-alertmanager; do
    $SUDO systemctl disable --now "$service" >/dev/null 2>&1 || $SUDO service "$service" stop >/dev/null 2>&1 || true
  done
fi

# systemd-analyze (Debian's systemd package) checks the example unit in mnemo_otel/systemd/.
if ! command -v systemd-analyze >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

# A real OpenTelemetry Collector built from the pinned manifest (cached until the manifest changes).
if [ -f collector/build.sh ]; then
  bash collector/build.sh
fi

# The real producer: the pinned Claude Code CLI from npm, for the interop tests (cached per user).
bash testkit/claude_code/install.sh >/dev/null

# The annotation-template expander the notification tests run Grafana's annotations through: Go's
# text/template with the Prometheus template functions (cached until its sources change).
bash testkit/annotation_render/build.sh >/dev/null

export PATH="$PWD/.venv/bin:$PATH"
ruff check .
ruff format --check .
mypy
pytest "$@"
