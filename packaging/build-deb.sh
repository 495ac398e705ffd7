#!/bin/sh
# Build the ovn-ic-rs Debian package with dpkg-deb (no debhelper needed).
#
# usage: packaging/build-deb.sh [--binary PATH] [--version VERSION] [--output DIR]
#                               [--compression xz|gzip|zstd|none]
#
#   --binary   the ovn-ic executable to package (default: target/release/ovn-ic)
#   --version  package version (default: the crate version from Cargo.toml, with "-1")
#   --output   directory for the .deb (default: target/debian)
#   --compression  dpkg-deb compressor (default: xz)
#
# Prints the path of the built package on stdout.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

binary="$top/target/release/ovn-ic"
version=""
output="$top/target/debian"
compression=xz

while [ $# -gt 0 ]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --binary=*) binary=${1#*=}; shift ;;
        --version) version=$2; shift 2 ;;
        --version=*) version=${1#*=}; shift ;;
        --output) output=$2; shift 2 ;;
        --output=*) output=${1#*=}; shift ;;
        --compression) compression=$2; shift 2 ;;
        --compression=*) compression=${1#*=}; shift ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-deb.sh: unknown argument '$1'" >&2; exit 1 ;;
    esac
done

if [ ! -x "$binary" ]; then
    echo "build-deb.sh: $binary: no such executable (build it first: cargo build --release)" >&2
    exit 1
fi
if [ -z "$version" ]; then
    version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$top/Cargo.toml" | head -n 1)-1
fi
arch=$(dpkg --print-architecture)
pkg=ovn-ic-rs

stage=$(mktemp -d)
chmod 755 "$stage"
trap 'rm -rf "$stage"' EXIT INT TERM

install -d -m 755 "$stage/DEBIAN" \
    "$stage/usr/bin" \
    "$stage/usr/share/man/man8" \
    "$stage/lib/systemd/system" \
    "$stage/usr/share/doc/$pkg"

# The file name matters: ovn-ctl runs "ovn-ic" from PATH.
install -m 755 "$binary" "$stage/usr/bin/ovn-ic"
gzip -9n -c "$here/man/ovn-ic.8" > "$stage/usr/share/man/man8/ovn-ic.8.gz"
chmod 644 "$stage/usr/share/man/man8/ovn-ic.8.gz"
install -m 644 "$here/systemd/ovn-ic.service" "$stage/lib/systemd/system/ovn-ic.service"
install -m 644 "$here/debian/copyright" "$stage/usr/share/doc/$pkg/copyright"
for script in postinst prerm postrm; do
    install -m 755 "$here/debian/$script" "$stage/DEBIAN/$script"
done

size=$(du -k -s "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    "$here/debian/control.in" > "$stage/DEBIAN/control"

mkdir -p "$output"
deb="$output/${pkg}_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compression" --build "$stage" "$deb" >/dev/null
echo "$deb"
