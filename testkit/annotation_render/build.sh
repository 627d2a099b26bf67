#!/usr/bin/env bash
# Build the annotation-template expander (main.go: Go's text/template with the Prometheus template
# functions, as Grafana expands alert annotations). The binary lands in the user's cache under a
# digest of go.mod, go.sum and main.go, so it is rebuilt only when one of them changes; a second run
# prints the cached path at once. One cache per user: every checkout and worktree shares one build.
# Prints the binary's absolute path as the last line of stdout (progress goes to stderr).
# Env: MNEMO_ANNOTATION_RENDER_CACHE overrides the cache root
# (default ${XDG_CACHE_HOME:-~/.cache}/mnemo-otel/annotation-render).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${MNEMO_ANNOTATION_RENDER_CACHE:-${XDG_CACHE_HOME:-${HOME:-$HERE}/.cache}/mnemo-otel/annotation-render}"

if ! command -v go >/dev/null 2>&1; then
  echo "annotation_render/build.sh: the Go toolchain is required (go not on PATH)" >&2
  exit 1
fi

DIGEST="$(cat "$HERE/go.mod" "$HERE/go.sum" "$HERE/main.go" | sha256sum | cut -c1-64)"
OUT_DIR="$CACHE/$DIGEST"
BINARY="$OUT_DIR/annotation-render"

if [ -x "$BINARY" ]; then
  echo "$BINARY"
  exit 0
fi

# Build from a copy beside the result, then move the binary in place atomically: an interrupted
# build never leaves a half-written binary that a later run would take as cached.
mkdir -p "$CACHE"
work="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp "$HERE/go.mod" "$HERE/go.sum" "$HERE/main.go" "$work/"
echo "annotation_render/build.sh: building annotation-render ($DIGEST); about a minute once" >&2
start=$SECONDS
(cd "$work" && go build -mod=readonly -trimpath -o annotation-render . >&2)
mkdir -p "$OUT_DIR"
mv "$work/annotation-render" "$BINARY.tmp"
mv "$BINARY.tmp" "$BINARY"
echo "annotation_render/build.sh: built in $((SECONDS - start)) s" >&2
echo "$BINARY"
