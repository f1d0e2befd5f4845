#!/bin/sh
# Package an already built CRIU tree as a plain criu .deb (test fixture for the
# apt_repo and deb cases): `make install-criu` into a staging root with PREFIX=/usr,
# dependencies from dpkg-shlibdeps, control file by hand, dpkg-deb --build.
# Usage: build_criu_deb.sh TREE VERSION REVISION OUTDIR   (prints the .deb's path)
set -eu
tree=$1 version=$2 revision=$3 out=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
make -C "$tree" install-criu DESTDIR="$work/root" PREFIX=/usr >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; exit 1; }
rm -rf "$work/root/usr/include"    # headers belong in a -dev package
mkdir -p "$work/root/DEBIAN" "$work/shlibs/debian"
printf 'Source: criu\n\nPackage: criu\nArchitecture: any\n' >"$work/shlibs/debian/control"
deps=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e "$work/root/usr/sbin/criu" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
[ -n "$deps" ] || { echo "dpkg-shlibdeps found no dependencies for criu" >&2; exit 1; }
arch=$(dpkg --print-architecture)
cat >"$work/root/DEBIAN/control" <<CONTROL
Package: criu
Version: $version-$revision
Architecture: $arch
Maintainer: fleet.criu tests <fleet-criu-test@invalid>
Installed-Size: $(du -sk "$work/root/usr" | cut -f1)
Depends: $deps, iproute2, python3
Section: admin
Priority: optional
Homepage: https://criu.org/
Description: checkpoint and restore in userspace (fleet.criu test build)
 CRIU $version built from the upstream release tarball by the fleet.criu install
 role's tests, to exercise its apt_repo and deb methods.
CONTROL
mkdir -p "$out"
deb="$out/criu_${version}-${revision}_${arch}.deb"
dpkg-deb --root-owner-group --build "$work/root" "$deb" >/dev/null
echo "$deb"
