#!/usr/bin/env bash
# Builds free-threaded CPython 3.13.5 ("3.13.5t") once and prints the path of its interpreter.
#
# No package registry here ships a free-threaded build, but Debian's trixie source package
# python3.13 3.13.5 carries the upstream Python-3.13.5.tar.xz unchanged as its orig tarball.
# So the source comes through the apt mirror this machine already uses: a deb-src line for
# trixie is derived from the configured sources (no host name is written here), kept in a
# temporary apt configuration, and the tarball lands in pyenv's download cache, where
# python-build checks it against the checksum it pins and builds from it (5 to 9 minutes on
# 2 cores). Later runs find the built interpreter in the cache folder and only print its path.
#
# Progress goes to stderr; stdout is the interpreter's path alone, for
# `python=$(.ci/free_threaded_python.sh)`.
set -euo pipefail

VERSION=3.13.5
SUITE=trixie
cache=${XDG_CACHE_HOME:-$HOME/.cache}/offload
prefix=$cache/python-${VERSION}t
python=$prefix/bin/python${VERSION%.*}t

if [ -x "$python" ] && "$python" -c 'import sys; sys.exit(sys._is_gil_enabled())' 2>/dev/null; then
    echo "$python"
    exit 0
fi

log() { echo "free_threaded_python: $*" >&2; }

# The Debian archive entry among the configured sources: the one whose suite is this host's
# codename (bookworm, not bookworm-security or bookworm-updates), in the one-line format of
# sources.list and *.list or in the deb822 format of *.sources. Prints "URI SIGNED-BY".
debian_mirror() {
    local codename
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    shopt -s nullglob
    # sources.lis[t] is a glob so that nullglob drops it where the file does not exist.
    local list_files=(/etc/apt/sources.lis[t] /etc/apt/sources.list.d/*.list)
    local deb822_files=(/etc/apt/sources.list.d/*.sources)
    shopt -u nullglob
    {
        # deb [signed-by=...] URI suite component...
        [ ${#list_files[@]} -eq 0 ] || awk -v want="$codename" '
            $1 == "deb" {
                signed = ""; i = 2
                if ($2 ~ /^\[/) {
                    for (; i <= NF; i++) {
                        if ($i ~ /^\[?signed-by=/) { signed = $i; sub(/^\[?signed-by=/, "", signed); sub(/\]$/, "", signed) }
                        if ($i ~ /\]$/) { i++; break }
                    }
                }
                if ($(i + 1) == want) print $i, signed
            }' "${list_files[@]}"
        # Stanzas of "Field: value" lines, separated by blank lines.
        [ ${#deb822_files[@]} -eq 0 ] || awk -v want="$codename" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " want " ") && enabled != "no")
                    print uris, signed
                types = suites = uris = signed = enabled = ""
            }
            /^[ \t]*$/ { flush(); next }
            /^#/ { next }
            {
                field = tolower($1); sub(/:$/, "", field); value = $0; sub(/^[^:]*:[ \t]*/, "", value)
                if (field == "types") types = value
                else if (field == "suites") suites = value
                else if (field == "uris") { split(value, u, " "); uris = u[1] }
                else if (field == "signed-by") signed = value
                else if (field == "enabled") enabled = tolower(value)
            }
            END { flush() }' "${deb822_files[@]}"
    } | head -n 1
}

read -r mirror signed_by < <(debian_mirror) || true
if [ -z "${mirror:-}" ]; then
    log "no Debian archive found among the apt sources in /etc/apt; cannot fetch the source"
    exit 1
fi
mirror=${mirror%/}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/source"
# apt drops privileges to _apt for downloads; it must be able to write there.
chmod -R a+rwx "$work"
echo "deb-src ${signed_by:+[signed-by=$signed_by] }$mirror $SUITE main" >"$work/sources.list"
log "source line: $(cat "$work/sources.list")"

apt_options=(
    -o "Dir::Etc::SourceList=$work/sources.list"
    -o "Dir::Etc::SourceParts=-"
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::Cache=$work/cache"
    -o "Dir::Cache::Archives=$work/archives"
    -o "APT::Get::List-Cleanup=0"
)
log "apt-get update ($SUITE sources only, in $work)"
apt-get "${apt_options[@]}" -q update >&2

debian_version=$(apt-cache "${apt_options[@]}" showsrc python3.13 |
    awk -v want="$VERSION" '$1 == "Version:" && index($2, want "-") == 1 { print $2; exit }')
if [ -z "$debian_version" ]; then
    log "$SUITE has no python3.13 source package of upstream version $VERSION:"
    apt-cache "${apt_options[@]}" showsrc python3.13 | grep '^Version:' >&2 || true
    exit 1
fi
log "apt-get source --download-only python3.13=$debian_version"
(cd "$work/source" && apt-get "${apt_options[@]}" -q source --download-only "python3.13=$debian_version" >&2)

# python-build names its download after the upstream URL and checks its pinned SHA-256,
# so a tarball that was changed in any way is refused there, not built.
build_cache=${PYTHON_BUILD_CACHE_PATH:-$cache/python-build-cache}
mkdir -p "$build_cache"
cp "$work/source/python3.13_${VERSION}.orig.tar.xz" "$build_cache/Python-${VERSION}.tar.xz"

python_build=$(pyenv root)/plugins/python-build/bin/python-build
log "building ${VERSION}t into $prefix"
rm -rf "$prefix"  # what an interrupted build left
started=$SECONDS
PYTHON_BUILD_CACHE_PATH=$build_cache MAKE_OPTS="-j$(nproc)" "$python_build" "${VERSION}t" "$prefix" >&2
log "built in $((SECONDS - started)) s"
echo "$python"
