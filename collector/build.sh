#!/usr/bin/env bash
# Build the test collector from collector/manifest.yaml with the official OpenTelemetry Collector
# Builder, pinned. The binary lands in the user's cache under the manifest's sha256, so it is
# rebuilt only when the manifest changes; a second run prints the cached path at once.
# Prints the binary's absolute path as the last line of stdout (progress goes to stderr).
# One cache per user, not per clone: every checkout and worktree of the same manifest shares one build.
# Env: MNEMO_OTELCOL_CACHE overrides the cache root (default ${XDG_CACHE_HOME:-~/.cache}/mnemo-otel/otelcol).
set -euo pipefail

BUILDER_VERSION="v0.165.0"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
MANIFEST="$REPO/collector/manifest.yaml"
CACHE="${MNEMO_OTELCOL_CACHE:-${XDG_CACHE_HOME:-${HOME:-$REPO}/.cache}/mnemo-otel/otelcol}"

if ! command -v go >/dev/null 2>&1; then
  echo "collector/build.sh: the Go toolchain is required (go not on PATH)" >&2
  exit 1
fi

DIGEST="$(sha256sum "$MANIFEST" | cut -c1-64)"
OUT_DIR="$CACHE/$DIGEST"
BINARY="$OUT_DIR/otelcol-mnemo"

if [ -x "$BINARY" ]; then
  echo "$BINARY"
  exit 0
fi

mkdir -p "$CACHE/bin"
BUILDER="$CACHE/bin/builder-$BUILDER_VERSION"
if [ ! -x "$BUILDER" ]; then
  echo "collector/build.sh: installing builder $BUILDER_VERSION" >&2
  tmp_bin="$(mktemp -d "$CACHE/bin/tmp.XXXXXX")"
  GOBIN="$tmp_bin" go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION" >&2
  mv "$tmp_bin/builder" "$BUILDER"
  rmdir "$tmp_bin"
fi

# Build in a scratch dir beside the result, then move the binary in place atomically, so an
# interrupted build never leaves a half-written binary that a later run would take as cached.
work="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp "$MANIFEST" "$work/manifest.yaml"
echo "collector/build.sh: building otelcol-mnemo (manifest $DIGEST); this takes a few minutes once" >&2
start=$SECONDS
(cd "$work" && "$BUILDER" --config manifest.yaml >&2)
mkdir -p "$OUT_DIR"
mv "$work/_build/otelcol-mnemo" "$BINARY.tmp"
mv "$BINARY.tmp" "$BINARY"
echo "collector/build.sh: built in $((SECONDS - start)) s" >&2
echo "$BINARY"
