#!/bin/sh
# demo.sh - mount a demo ekycfs store for trying it out (make run), or
# unmount it (make stop). Store and mountpoint live in ./demo/.
set -eu
cd "$(dirname "$0")/.."
DEMO=$(pwd)/demo
STORE=$DEMO/store
MNT=$DEMO/mnt
BIN=${BUILD:-build}/ekycfs

case "${1:-start}" in
start)
	mkdir -p "$MNT"
	if mountpoint -q "$MNT"; then
		echo "ekycfs demo is already mounted at $MNT"
	else
		"$BIN" -o "audit_log=$DEMO/audit.log" "$STORE" "$MNT"
		echo "ekycfs demo mounted at $MNT"
	fi
	cat <<EOT
  zones:       $(ls "$MNT" | tr '\n' ' ')
  key:         ephemeral (unmounting makes the store unreadable)
  retention:   entries vanish and are shredded 2h after their last change
  try:         cd $MNT/rlc && echo hello > face.txt && cat face.txt
               getfattr -n user.ekycfs.expires face.txt
               ls -R $STORE      # names and content are ciphertext
  audit log:   $DEMO/audit.log
  unmount:     make stop   (or: fusermount3 -u $MNT)
EOT
	;;
stop)
	if mountpoint -q "$MNT"; then
		fusermount3 -u "$MNT"
		echo "ekycfs demo unmounted from $MNT"
	else
		echo "ekycfs demo is not mounted"
	fi
	;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
