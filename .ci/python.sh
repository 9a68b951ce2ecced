#!/usr/bin/env bash
# Prints the path of a working Python interpreter of the version asked for, getting it once
# into the cache folder (~/.cache/offload) when this machine lacks it. Usage:
#
#     python=$(.ci/python.sh 3.14)     # 3.11, 3.12, ..., 3.15; 3.13t for free-threaded 3.13
#
# Progress goes to stderr; stdout is the interpreter's path alone. A second call finds the
# interpreter and only prints its path. Where an interpreter comes from, first found first:
#
# 1. pyenv, where a build of that version is installed (3.11 to 3.13 on CI's machines).
# 2. The cache folder, where an earlier call put it.
# 3. Free-threaded builds: Debian's source package of that Python, through the apt mirror
#    this machine already uses. Debian ships no free-threaded binary, but its source package
#    carries the upstream tarball unchanged; pyenv's python-build checks it against the
#    checksum it pins and builds it (5 to 9 minutes on 2 cores).
# 4. GIL builds: Debian sid's binary packages, from that mirror's sid suite. Debian's
#    mirror answers 404 for sid's source files, so the binaries are what there is. They
#    are built for a newer C library than this machine's, so they are unpacked, with
#    sid's libc6 and the libraries the interpreter loads, into a private root under the
#    cache folder, and the interpreter is pointed at that root's dynamic loader and
#    libraries (patchelf). Nothing is installed into the system.
#
# The mirror's address is read from the apt sources at run time, so no host name is written
# here, and the version is whatever the mirror's index holds that day.
set -euo pipefail

log() { echo "python.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

[ $# -eq 1 ] || die "usage: .ci/python.sh VERSION (3.11, 3.12, 3.13, 3.14, 3.15, 3.13t, ...)"
[[ $1 =~ ^3\.[0-9]+t?$ ]] || die "'$1' is not a version this script knows how to get: give 3.N or, free-threaded, 3.Nt"
minor=${1%t}              # 3.14
threading=${1#"$minor"} # "t" for a free-threaded build, else ""
cache=${XDG_CACHE_HOME:-$HOME/.cache}/offload

# True when $1 runs, is the version and build asked for, and has the modules that pip and
# the test suite need from the standard library's compiled parts.
works() {
    [ -x "$1" ] && "$1" - "$minor" "$threading" >/dev/null 2>&1 <<'EOF'
import sys
import bz2, ctypes, ensurepip, lzma, sqlite3, ssl, venv, zlib
minor, threading = sys.argv[1:]
free_threaded = hasattr(sys, "_is_gil_enabled") and not sys._is_gil_enabled()
sys.exit("%d.%d" % sys.version_info[:2] != minor or free_threaded != (threading == "t"))
EOF
}

found() {
    echo "$1"
    exit 0
}

# 1. pyenv's own builds.
if [ -z "$threading" ] && command -v pyenv >/dev/null; then
    installed=$(pyenv latest "$minor" 2>/dev/null) || installed=
    if [ -n "$installed" ] && works "$(pyenv root)/versions/$installed/bin/python$minor"; then
        found "$(pyenv root)/versions/$installed/bin/python$minor"
    fi
fi

# One call at a time gets a given version: another one (a second CI job, a script of
# .ci/ run meanwhile) waits here, then finds what the first put into the cache.
mkdir -p "$cache"
exec {lock}>"$cache/.python-$1.lock"
if ! flock -n "$lock"; then
    log "waiting for another call that is getting Python $1"
    flock "$lock"
fi

# 2. What an earlier call put into the cache folder: python-3.13.5t/bin/python3.13t when
# built from source, python-3.14.10/usr/bin/python3.14 when unpacked from Debian's packages.
# A build that an interrupted call left half done fails works() and is made again.
shopt -s nullglob
for dir in $(printf '%s\n' "$cache/python-$minor".*"$threading" | sort -rV); do
    for python in "$dir/bin/python$minor$threading" "$dir/usr/bin/python$minor"; do
        if works "$python"; then found "$python"; fi
    done
done
shopt -u nullglob

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

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt drops privileges to _apt for downloads; it must be able to write there.
chmod a+rwx "$work"

# A private apt configuration over the mirror's given suites, of the given type (deb or
# deb-src), its index fetched into $work: the system's own apt state is left alone. Sets
# the array apt_options, for apt-get and apt-cache.
apt_index() {
    local type=$1 suite mirror signed_by
    shift
    read -r mirror signed_by < <(debian_mirror) || true
    [ -n "${mirror:-}" ] || die "no Debian archive found among the apt sources in /etc/apt; cannot reach Debian's packages"
    mkdir -p "$work/lists/partial" "$work/archives/partial"
    chmod -R a+rwx "$work"
    for suite in "$@"; do
        echo "$type ${signed_by:+[signed-by=$signed_by] }${mirror%/} $suite main"
    done >"$work/sources.list"
    apt_options=(
        -o "Dir::Etc::SourceList=$work/sources.list"
        -o "Dir::Etc::SourceParts=-"
        -o "Dir::State::Lists=$work/lists"
        -o "Dir::State::status=/dev/null" # nothing counts as installed: every dependency is listed
        -o "Dir::Cache=$work/cache"
        -o "Dir::Cache::Archives=$work/archives"
        -o "APT::Get::List-Cleanup=0"
    )
    log "apt-get update: $(tr '\n' ';' <"$work/sources.list")"
    apt-get "${apt_options[@]}" -q update >&2
}

# 3. Free-threaded: build from the upstream tarball in a Debian source package. The Sources
# index may list a version whose files the mirror does not serve, and python-build needs a
# definition of the version (its checksum), so each version listed is tried, newest first.
from_debian_source() {
    local suites=(trixie sid) tried=() version upstream python_build definitions build_cache prefix
    apt_index deb-src "${suites[@]}"
    python_build=$(pyenv root)/plugins/python-build/bin/python-build
    definitions=$("$python_build" --definitions)
    build_cache=${PYTHON_BUILD_CACHE_PATH:-$cache/python-build-cache}
    mkdir -p "$work/source" "$build_cache"
    chmod a+rwx "$work/source"
    for version in $(apt-cache "${apt_options[@]}" showsrc "python$minor" 2>/dev/null |
        awk '$1 == "Version:" { print $2 }' | sort -rV); do
        upstream=${version%%-*}
        tried+=("$version")
        if ! grep -qxF "${upstream}t" <<<"$definitions"; then
            log "python$minor $version: python-build has no definition of ${upstream}t"
            continue
        fi
        log "apt-get source --download-only python$minor=$version"
        if ! (cd "$work/source" && apt-get "${apt_options[@]}" -q source --download-only "python$minor=$version" >&2); then
            log "python$minor $version: the mirror does not serve its source"
            continue
        fi
        # python-build names its download after the upstream URL and checks its pinned
        # SHA-256, so a tarball that was changed in any way is refused there, not built.
        cp "$work/source/python${minor}_${upstream}.orig.tar.xz" "$build_cache/Python-${upstream}.tar.xz"
        prefix=$cache/python-${upstream}t
        log "building ${upstream}t into $prefix"
        rm -rf "$prefix" # what an interrupted build left
        local started=$SECONDS
        PYTHON_BUILD_CACHE_PATH=$build_cache MAKE_OPTS="-j$(nproc)" "$python_build" "${upstream}t" "$prefix" >&2
        log "built in $((SECONDS - started)) s"
        works "$prefix/bin/python$minor$threading" || die "the build in $prefix does not work: see the log above"
        found "$prefix/bin/python$minor$threading"
    done
    die "no free-threaded Python $minor can be had from this machine's Debian mirror: Debian builds no" \
        "free-threaded binary package, and no source package of python$minor there is both served and" \
        "known to python-build (versions listed: ${tried[*]:-none})"
}

if [ -n "$threading" ]; then
    from_debian_source
fi

# The packages to unpack: the interpreter's, with venv (ensurepip, and the wheels of pip and
# setuptools it installs) and the headers C extensions build against, then the closure of
# their Depends and Pre-Depends over the sections "libs" (the shared libraries it loads, and
# libc6 with its dynamic loader) and "python". Data and tools that the host has already
# (tzdata, netbase, media types), and C headers other than Python's, are left out.
sid_packages() {
    local -A taken=()
    local queue=("python$minor" "python$minor-venv" "python$minor-dev" "libpython$minor-dev") next
    while [ ${#queue[@]} -gt 0 ]; do
        for pkg in "${queue[@]}"; do taken[$pkg]=1; done
        mapfile -t next < <(
            apt-cache "${apt_options[@]}" depends --important "${queue[@]}" |
                awk '$1 ~ /Depends:$/ && $2 !~ /^</ { print $2 }' | sort -u
        )
        [ ${#next[@]} -gt 0 ] || break
        mapfile -t queue < <(
            apt-cache "${apt_options[@]}" show "${next[@]}" |
                awk '$1 == "Package:" { name = $2 } $1 == "Section:" && ($2 == "libs" || $2 == "python") { print name }' |
                sort -u | while read -r pkg; do [ -n "${taken[$pkg]:-}" ] || echo "$pkg"; done
        )
    done
    printf '%s\n' "${!taken[@]}" | sort
}

# 4. GIL builds from Debian sid's binary packages, unpacked into a root of their own.
from_sid_binaries() {
    local codename version packages root triplet patchelf python
    # The host's own suite too, for patchelf: sid's would need sid's C library to run.
    # sid's versions are the newer, so every other package still comes from sid.
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    apt_index deb sid "$codename"
    version=$(apt-cache "${apt_options[@]}" policy "python$minor" | awk '$1 == "Candidate:" { print $2 }')
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
        die "no Python $minor can be had: pyenv has no build of it installed, and Debian sid has no python$minor package"
    fi
    mapfile -t packages < <(sid_packages)
    root=$cache/python-${version%%-*}
    log "python$minor $version from sid: ${packages[*]}"
    mkdir -p "$work/debs"
    chmod a+rwx "$work/debs"
    (cd "$work/debs" && apt-get "${apt_options[@]}" -q download "${packages[@]}" "patchelf/$codename" >&2)
    dpkg-deb -x "$work"/debs/patchelf_*.deb "$work/patchelf"
    patchelf=$work/patchelf/usr/bin/patchelf
    rm -f "$work"/debs/patchelf_*.deb
    # Unpacked beside the cache's name for it and renamed when whole, so that an
    # interrupted call leaves nothing that step 2 would take. The paths written into the
    # interpreter are those it will have after the rename.
    rm -rf "$root.partial" "$root" # what an interrupted call left, or a root that no longer works
    mkdir -p "$root.partial"
    for deb in "$work/debs"/*.deb; do
        dpkg-deb -x "$deb" "$root.partial"
    done

    triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine)
    local partial=$root.partial python=$root/usr/bin/python$minor
    # The loader and libraries of the root, not the host's, for the interpreter and for every
    # module it loads: DT_RPATH (--force-rpath), unlike DT_RUNPATH, also applies to the
    # libraries that the extension modules in lib-dynload need (libssl for _ssl, ...).
    "$patchelf" --set-interpreter "$root/usr/lib/$triplet/ld-linux-x86-64.so.2" \
        --force-rpath --set-rpath "$root/usr/lib/$triplet" "$partial/usr/bin/python$minor"
    # Two of Debian's paths assume the packages are installed at /usr. ensurepip (which venv
    # runs) takes pip's wheel from the compiled-in WHEEL_PKG_DIR, /usr/share/python-wheels.
    sed -i "s|'/usr/share/python-wheels/'|'$root/usr/share/python-wheels/'|" \
        "$partial/usr/lib/python$minor"/_sysconfigdata_*.py
    # The pyconfig.h that C extensions include picks the architecture's own from the system
    # include path (<$triplet/python$minor/pyconfig.h>), where this root is not; the root
    # holds one architecture, so its pyconfig.h takes the place of the one that picks.
    cp "$partial/usr/include/$triplet/python$minor/pyconfig.h" "$partial/usr/include/python$minor/pyconfig.h"
    # python3 beside it, as Debian's python3 package makes it, for a PATH with this bin first.
    ln -s "python$minor" "$partial/usr/bin/python3"
    mv "$partial" "$root"

    # What venv, pip and a C extension's build need of it; a root that fails is removed.
    if ! works "$python" || ! "$python" -m venv "$work/venv" >&2 || ! "$work/venv/bin/python" -m pip --version >&2 ||
        ! echo '#include <Python.h>' | gcc -fsyntax-only -x c - >&2 \
            -I "$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"; then
        rm -rf "$root"
        die "python$minor unpacked from sid's packages does not work here: see the lines above"
    fi
    found "$python"
}

if [ -z "$threading" ]; then
    from_sid_binaries
fi
