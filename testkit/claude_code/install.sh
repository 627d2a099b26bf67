#!/usr/bin/env bash
# Install the pinned Claude Code CLI from npm for the interop tests, cached per user like the collector.
# Only the native binary of the platform package is used; npm's install scripts are not run (they
# would only copy that binary over a placeholder), so the install downloads nothing else.
# Prints the binary's absolute path as the last line of stdout (progress goes to stderr).
# Env: MNEMO_CLAUDE_CODE_VERSION tests another version (default: testkit/claude_code/VERSION);
#      MNEMO_CLAUDE_CODE_CACHE overrides the cache root (default ${XDG_CACHE_HOME:-~/.cache}/mnemo-otel/claude-code).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
VERSION="${MNEMO_CLAUDE_CODE_VERSION:-$(tr -d '[:space:]' < "$HERE/VERSION")}"
CACHE="${MNEMO_CLAUDE_CODE_CACHE:-${XDG_CACHE_HOME:-${HOME:-$HERE}/.cache}/mnemo-otel/claude-code}"

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "claude_code/install.sh: no Claude Code build for $(uname -m)" >&2; exit 1 ;;
esac
libc=""
if ldd --version 2>&1 | grep -qi musl; then libc="-musl"; fi
PLATFORM_PACKAGE="@anthropic-ai/claude-code-linux-$arch$libc"

OUT_DIR="$CACHE/$VERSION"
BINARY="$OUT_DIR/node_modules/$PLATFORM_PACKAGE/claude"
if [ -x "$BINARY" ] && [ -f "$OUT_DIR/.complete" ]; then
  echo "$BINARY"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "claude_code/install.sh: npm is required (Node.js not on PATH)" >&2
  exit 1
fi

# Install into a scratch dir, then move it in place, so an interrupted install is never taken as cached.
mkdir -p "$CACHE"
work="$(mktemp -d "$CACHE/install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "claude_code/install.sh: installing $PLATFORM_PACKAGE@$VERSION" >&2
(cd "$work" && npm install --silent --no-audit --no-fund --ignore-scripts --no-save \
  "$PLATFORM_PACKAGE@$VERSION" >&2)
test -x "$work/node_modules/$PLATFORM_PACKAGE/claude"
touch "$work/.complete"
rm -rf "$OUT_DIR"
mv "$work" "$OUT_DIR"
trap - EXIT
echo "$BINARY"
