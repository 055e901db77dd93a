#!/bin/sh
# Install the Debian packages ekycfs needs to build, run and test.
# Quiet and quick when everything is already present.
set -eu

PKGS="build-essential pkg-config libfuse3-dev fuse3 libsodium-dev libinih-dev
libcriterion-dev attr bc python3 coreutils diffutils findutils util-linux procps passwd
tar rsync man-db groff-base bsdextrautils mount"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
