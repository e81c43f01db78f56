#!/usr/bin/env bash
# Builds libcni's reference `cnitool` offline from Debian's packages, into a
# cache directory, only when it is missing there.
#
#   test/support/cnitool.sh [CACHE_DIR]     (default: <repo>/build/cnitool)
#
# Prints the binary's path (CACHE_DIR/cnitool) on stdout; progress and errors
# go to stderr. Idempotent, and safe to run concurrently (flock on
# CACHE_DIR/.lock). Needs root only when something is missing.
#
# Recipe (Debian 12):
#   - libcni itself:   golang-github-appc-cni-dev (GOPATH sources in /usr/share/gocode)
#   - cnitool's main:  only in the Debian *source* package golang-github-appc-cni
#                      (debian/rules excludes cnitool from the binary packages),
#                      so a deb-src entry is added and `apt-get source` fetches it
#   - build:           GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off go build ./cnitool
#   - reference plugins (bridge, host-local, portmap, …): containernetworking-plugins,
#     installed in /usr/lib/cni; used side by side with ferry's plugin in tests.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE_DIR=${1:-$REPO_ROOT/build/cnitool}
BIN=$CACHE_DIR/cnitool
SRC_PACKAGE=golang-github-appc-cni
APT_PACKAGES=(golang-go golang-github-appc-cni-dev containernetworking-plugins dpkg-dev)
DEB_SRC_FILE=/etc/apt/sources.list.d/ferry-deb-src.sources
APT_OPTS=(-o DPkg::Lock::Timeout=600 -o APT::Sandbox::User=root)

say() { echo "cnitool.sh: $*" >&2; }
die() { echo "cnitool.sh: error: $*" >&2; exit 1; }

# Fast path without the lock.
if [[ -x $BIN ]]; then echo "$BIN"; exit 0; fi

mkdir -p "$CACHE_DIR" || die "cannot create cache directory $CACHE_DIR"
exec 9>"$CACHE_DIR/.lock" || die "cannot open lock file $CACHE_DIR/.lock"
flock 9 || die "cannot lock $CACHE_DIR/.lock"
# Another worker may have built it while we waited.
if [[ -x $BIN ]]; then echo "$BIN"; exit 0; fi

need_root() {
  [[ $(id -u) -eq 0 ]] || die "$1 needs root (run as root, or run 'make deps' first)"
}

apt_updated=0
apt_update() {
  need_root "apt-get update"
  say "apt-get update"
  apt-get "${APT_OPTS[@]}" update -qq >&2 || die "apt-get update failed"
  apt_updated=1
}

# --- 1. Debian packages -------------------------------------------------------
installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed'; }
missing=()
for p in "${APT_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
  need_root "installing ${missing[*]}"
  apt_update
  say "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends \
    "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
fi
command -v go >/dev/null || die "'go' not found after installing golang-go"
[[ -d /usr/share/gocode/src/github.com/containernetworking/cni/libcni ]] ||
  die "libcni sources missing in /usr/share/gocode (package golang-github-appc-cni-dev)"
[[ -x /usr/lib/cni/bridge ]] || die "reference plugins missing in /usr/lib/cni (package containernetworking-plugins)"

# --- 2. deb-src entry ---------------------------------------------------------
has_source() { [[ -n $(apt-cache showsrc "$SRC_PACKAGE" 2>/dev/null) ]]; }

# Writes deb822 deb-src stanzas for every enabled Debian archive entry
# ("URIs" ending in /debian or /debian-security), deb822 or one-line style.
derive_deb_src() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f && $f != "$DEB_SRC_FILE" ]] || continue
    awk '
      function flush() {
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && uris ~ /\/debian(-security)?\/?([ \t]|$)/ && enabled !~ /^[ \t]*no/) {
          printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n", uris, suites, comps
          if (signed != "") printf "Signed-By: %s\n", signed
          printf "\n"
        }
        types = uris = suites = comps = signed = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      { key = tolower($1); sub(/^[^:]*:[ \t]*/, "") }
      key == "types:" { types = $0 } key == "uris:" { uris = $0 } key == "suites:" { suites = $0 }
      key == "components:" { comps = $0 } key == "signed-by:" { signed = $0 } key == "enabled:" { enabled = $0 }
      END { flush() }
    ' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    # deb [opts] URI SUITE COMPONENTS...
    awk '
      $1 == "deb" {
        i = 2; opts = ""
        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) { opts = opts " " $i; i++ } opts = opts " " $i; i++ }
        uri = $i; suite = $(i + 1); comps = ""
        for (j = i + 2; j <= NF; j++) comps = comps (comps == "" ? "" : " ") $j
        if (uri !~ /\/debian(-security)?\/?$/) next
        printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n", uri, suite, comps
        if (match(opts, /signed-by=[^] ]+/)) printf "Signed-By: %s\n", substr(opts, RSTART + 10, RLENGTH - 10)
        printf "\n"
      }
    ' "$f"
  done
}

if ! has_source; then
  if [[ ! -f $DEB_SRC_FILE ]]; then
    need_root "adding a deb-src entry"
    content=$(derive_deb_src)
    [[ -n $content ]] || die "found no Debian archive entry in /etc/apt/sources.list{,.d} to derive a deb-src entry from"
    say "adding $DEB_SRC_FILE"
    tmp=$(mktemp "$DEB_SRC_FILE.XXXXXX") || die "cannot write to /etc/apt/sources.list.d"
    { echo "# Added by ferry's test/support/cnitool.sh: Debian source packages (for cnitool)."; echo; printf '%s\n' "$content"; } >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$DEB_SRC_FILE"
  fi
  apt_update
  has_source || die "apt-get update did not make the source package $SRC_PACKAGE known (check $DEB_SRC_FILE)"
fi

# --- 3. fetch and build -------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-cnitool.XXXXXX") || die "cannot create a temp dir"
trap 'rm -rf "$work"' EXIT

say "apt-get source $SRC_PACKAGE"
(cd "$work" && apt-get "${APT_OPTS[@]}" source -qq "$SRC_PACKAGE") >"$work/apt-source.log" 2>&1 || {
  cat "$work/apt-source.log" >&2
  die "apt-get source $SRC_PACKAGE failed"
}
main=$(find "$work" -mindepth 3 -maxdepth 3 -path '*/cnitool/cnitool.go' -print -quit)
[[ -n $main ]] || die "cnitool/cnitool.go not found in the source of $SRC_PACKAGE (layout changed?)"
srcdir=$(dirname "$(dirname "$main")")
version=$(dpkg-parsechangelog -l "$srcdir/debian/changelog" -S Version 2>/dev/null || echo unknown)

say "building cnitool ($SRC_PACKAGE $version) against /usr/share/gocode"
mkdir -p "$work/gocache"
(cd "$srcdir" && env -u GOFLAGS GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off \
  GOCACHE="$work/gocache" CGO_ENABLED=0 go build -trimpath -o "$work/cnitool" ./cnitool) >&2 ||
  die "go build of cnitool failed"

tmpbin=$(mktemp "$CACHE_DIR/.cnitool.XXXXXX")
cp "$work/cnitool" "$tmpbin" && chmod 0755 "$tmpbin"
echo "$SRC_PACKAGE $version, $(go version)" >"$CACHE_DIR/cnitool.version"
mv -f "$tmpbin" "$BIN"
say "built $BIN"
echo "$BIN"
