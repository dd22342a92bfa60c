#!/usr/bin/env bash
# Builds the two Go binaries the stack tests run, from the Go module proxy, into a cache keyed by a
# sha256 of everything that decides the binary, so a second build costs nothing:
#
#   otelcol-flowtel  flowtel's collector distribution: collector/builder-config.yaml, built by the
#                    OpenTelemetry Collector Builder at the manifest's release
#   prometheus       the Prometheus release collector/docker-compose.yaml pins (prom/prometheus:v3.X.Y
#                    is Go module github.com/prometheus/prometheus v0.3XX.Y)
#
# Usage: collector/build.sh [collector|prometheus|all]     build (if needed); print the path(s)
#        collector/build.sh --path [collector|prometheus]  print the path only (built or not)
#
# Cache: ${FLOWTEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flowtel}/{otelcol,prometheus}-<hash>/.
# Go's own caches (module cache, build cache) make a rebuild after a cache-key change cheaper.
# Needs Go (1.26 here) and the Go module proxy; nothing else is downloaded.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
manifest="$here/builder-config.yaml"
compose="$here/docker-compose.yaml"
cache_root="${FLOWTEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flowtel}"
# Service discovery plugins (AWS, Azure, GCE, Kubernetes, ...) are left out: the stack uses
# static_configs only, and they are most of Prometheus' build time. Set to "" for all of them.
prometheus_tags="${FLOWTEL_PROMETHEUS_TAGS-remove_all_sd}"

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

command -v go >/dev/null 2>&1 || die "go not found: install Go (https://go.dev/doc/install or apt-get install golang)"
go_version="$(go env GOVERSION) $(go env GOOS)/$(go env GOARCH)"

sha() { sha256sum | cut -c1-16; }

# ------------------------------------------------------------------ versions, from the repo's files
ocb_version() {  # the manifest's dist.version, as a module version (v0.161.0)
    local v
    v="$(sed -n 's/^  version: *\([0-9][0-9.]*\) *$/\1/p' "$manifest" | head -n1)"
    [ -n "$v" ] || die "no dist.version in $manifest"
    printf 'v%s' "$v"
}

prometheus_release() {  # v3.14.0, from the compose file's image tag
    local tag
    tag="$(grep -oE 'prom/prometheus:v3\.[0-9]+\.[0-9]+' "$compose" | head -n1 | cut -d: -f2)"
    [ -n "$tag" ] || die "no prom/prometheus:v3.X.Y image in $compose"
    printf '%s' "$tag"
}

prometheus_module_version() {  # Prometheus v3.14.0 is module version v0.314.0
    local rel major minor patch
    rel="${1#v}"
    IFS=. read -r major minor patch <<<"$rel"
    printf 'v0.%d.%d' "$((major * 100 + minor))" "$patch"
}

collector_dir() {
    local key
    key="$( { cat "$manifest"; printf 'ocb %s\ngo %s\n' "$(ocb_version)" "$go_version"; } | sha)"
    printf '%s/otelcol-%s' "$cache_root" "$key"
}

prometheus_dir() {
    local key rel
    rel="$(prometheus_release)"
    key="$(printf 'prometheus %s %s\ntags %s\ngo %s\n' "$rel" "$(prometheus_module_version "$rel")" \
        "$prometheus_tags" "$go_version" | sha)"
    printf '%s/prometheus-%s' "$cache_root" "$key"
}

# Run "$@" under an exclusive lock on $1.lock (two concurrent builds of one key wait for each other).
with_lock() {
    local dir="$1"
    shift
    mkdir -p "$(dirname "$dir")"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$dir.lock"
        flock 9
    fi
    "$@"
}

# ------------------------------------------------------------------ otelcol-flowtel
build_collector() {
    local dir="$1" ver work start
    [ -x "$dir/otelcol-flowtel" ] && return 0
    ver="$(ocb_version)"
    start=$SECONDS
    work="$(mktemp -d "$cache_root/.otelcol-build.XXXXXX")"
    log "building otelcol-flowtel $ver from $manifest (cold: a few minutes) in $work"
    GOBIN="$work/bin" go install "go.opentelemetry.io/collector/cmd/builder@$ver"
    # output_path in the manifest is relative: the sources and binary land in $work/_build
    (cd "$work" && CGO_ENABLED=0 "$work/bin/builder" --config="$manifest" >"$work/builder.log" 2>&1) \
        || { tail -n 40 "$work/builder.log" >&2; die "builder failed (log: $work/builder.log)"; }
    mkdir -p "$dir.tmp"
    mv "$work/_build/otelcol-flowtel" "$dir.tmp/otelcol-flowtel"
    cp "$manifest" "$dir.tmp/builder-config.yaml"
    rm -rf "$work" "$dir"
    mv "$dir.tmp" "$dir"
    log "built otelcol-flowtel in $((SECONDS - start)) s"
}

# ------------------------------------------------------------------ prometheus
build_prometheus() {
    local dir="$1" rel mod src start version_pkg
    [ -x "$dir/prometheus" ] && return 0
    rel="$(prometheus_release)"
    mod="$(prometheus_module_version "$rel")"
    start=$SECONDS
    log "building prometheus $rel (module github.com/prometheus/prometheus@$mod, tags '$prometheus_tags')"
    # `go install github.com/prometheus/prometheus/cmd/prometheus@$mod` is refused: the module's
    # go.mod has replace and exclude directives (v0.313.x-v0.315.x do; v0.316.0 does not). So the
    # release is built as its own main module, from the checksum-verified copy in the module cache,
    # with exactly its go.mod/go.sum: the same dependency set as the release binary.
    src="$(go mod download -json "github.com/prometheus/prometheus@$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [ -d "$src" ] || die "go mod download github.com/prometheus/prometheus@$mod failed"
    version_pkg=github.com/prometheus/common/version
    mkdir -p "$dir.tmp"
    # GOWORK=off: the module zip carries the repository's go.work, whose other modules it lacks.
    (cd "$src" && CGO_ENABLED=0 GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" go build -trimpath \
        -tags "$prometheus_tags" \
        -ldflags "-X $version_pkg.Version=${rel#v} -X $version_pkg.BuildUser=flowtel-build.sh -X $version_pkg.Branch=$mod" \
        -o "$dir.tmp/prometheus" ./cmd/prometheus)
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
    log "built prometheus $rel in $((SECONDS - start)) s"
}

# ------------------------------------------------------------------ main
path_of() {
    case "$1" in
        collector) printf '%s/otelcol-flowtel\n' "$(collector_dir)" ;;
        prometheus) printf '%s/prometheus\n' "$(prometheus_dir)" ;;
        *) die "unknown target '$1' (collector|prometheus)" ;;
    esac
}

build() {
    local dir
    case "$1" in
        collector) dir="$(collector_dir)"; (with_lock "$dir" build_collector "$dir") ;;
        prometheus) dir="$(prometheus_dir)"; (with_lock "$dir" build_prometheus "$dir") ;;
        *) die "unknown target '$1' (collector|prometheus|all)" ;;
    esac
    path_of "$1"
}

mkdir -p "$cache_root"
case "${1:-all}" in
    --path) path_of "${2:?usage: build.sh --path collector|prometheus}" ;;
    all) build collector; build prometheus ;;
    collector | prometheus) build "$1" ;;
    -h | --help) sed -n '2,16p' "$0" ;;
    *) die "usage: build.sh [collector|prometheus|all] | --path collector|prometheus" ;;
esac
