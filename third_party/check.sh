#!/usr/bin/env bash
# Checks that third_party/protoactor-go is exactly the upstream module at
# the version go.mod requires, reduced to the packages Parley builds with,
# with third_party/protoactor-go/patches/*.patch applied in order: nothing
# edited by hand outside a patch, no patch missing from the copy.
#
# Upstream comes from the Go module cache: go mod download fetches it the
# first time (plain `go mod download` does not, as go.mod replaces the
# module). `check.sh --download` only fetches it, so that a CI run can
# fetch everything first and check offline. make test runs the check.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
copy=$root/third_party/protoactor-go
mod=github.com/asynkron/protoactor-go
# The packages the copy keeps (PATCHES.md): their non-test .go and .proto
# files, plus the module's LICENSE and go.mod.
pkgs="ctxext eventstream extensions internal/queue/goring internal/queue/mpsc metrics actor remote cluster cluster/identitylookup/disthash"

version=$(awk -v m="$mod" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$root/go.mod")
[ -n "$version" ] || { echo "third_party: go.mod requires no version of $mod"; exit 1; }
upstream=$(cd "$root" && GOFLAGS=-mod=mod go mod download -json "$mod@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -d "$upstream" ] || { echo "third_party: $mod@$version is not in the module cache (go mod download $mod@$version)"; exit 1; }
[ "${1:-}" = --download ] && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for p in $pkgs; do
  mkdir -p "$work/$p"
  for f in "$upstream/$p"/*.go "$upstream/$p"/*.proto; do
    [ -f "$f" ] || continue
    case "$f" in *_test.go) continue ;; esac
    cp "$f" "$work/$p/"
  done
done
cp "$upstream/LICENSE" "$upstream/go.mod" "$work/"
chmod -R u+w "$work"

for patch in "$copy"/patches/*.patch; do
  # GIT_CEILING_DIRECTORIES: never mistake a repository above $work for
  # the tree to patch.
  if ! (cd "$work" && GIT_CEILING_DIRECTORIES=$(dirname "$work") git apply -p1 "$patch"); then
    echo "third_party: $(basename "$patch") does not apply to $mod@$version (after the patches before it)"
    exit 1
  fi
done

if ! diff -r -u --exclude=PATCHES.md --exclude=patches "$work" "$copy" >"$work.diff"; then
  echo "third_party/protoactor-go differs from $mod@$version with its patches applied:"
  head -60 "$work.diff"
  rm -f "$work.diff"
  exit 1
fi
rm -f "$work.diff"
echo "third_party/protoactor-go: $mod@$version + $(ls "$copy"/patches/*.patch | wc -l) patches, exactly"
