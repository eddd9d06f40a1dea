#!/usr/bin/env bash
# Starts a Podman 5 service (Debian 13's podman) in a chroot, for the
# compatibility run of the golden suites (make test-compat). Prints the
# service's socket path on the host. Needs root.
#
#   .ci/podman5.sh start   build the root if needed (debootstrap, ~30 s), start the service
#   .ci/podman5.sh stop    stop it and unmount
set -euo pipefail
R=${PODMAN5_ROOT:-/var/tmp/podman-worker-trixie}
SOCK=/run/pw/podman.sock
cd "$(dirname "$0")/.."

mounted() { grep -q " $1 " /proc/mounts; }

case "${1:-start}" in
start)
	if [ ! -x "$R/usr/bin/podman" ]; then
		command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
		debootstrap --variant=minbase --include=podman,runc,busybox-static trixie "$R" http://deb.debian.org/debian >&2
	fi
	# Image unpacking fails unless the root is a mount point of its own.
	mounted "$R" || mount --bind "$R" "$R"
	mounted "$R/proc" || mount -t proc proc "$R/proc"
	mounted "$R/sys" || mount --rbind /sys "$R/sys"
	mounted "$R/dev" || mount --rbind /dev "$R/dev"
	cp testdata/containers.conf "$R/etc/containers/podman-worker.conf"
	mkdir -p "$R/run/pw"
	rm -f "$R$SOCK"
	(cd "$R/run/pw" && exec setsid chroot "$R" /usr/bin/env CONTAINERS_CONF=/etc/containers/podman-worker.conf \
		podman --root /var/lib/pw/root --runroot /run/pw/runroot system service --time=0 "unix://$SOCK" \
		>"$R/run/pw/service.log" 2>&1) &
	echo $! >"$R/run/pw/pid"
	for _ in $(seq 150); do [ -S "$R$SOCK" ] && break; sleep 0.2; done
	[ -S "$R$SOCK" ] || { echo "podman 5 service did not start; see $R/run/pw/service.log" >&2; exit 1; }
	echo "$R$SOCK"
	;;
stop)
	if [ -f "$R/run/pw/pid" ]; then
		pkill -TERM -f "unix://$SOCK" || true
		sleep 1
		rm -f "$R/run/pw/pid"
	fi
	for m in "$R/dev" "$R/sys" "$R/proc" "$R"; do mounted "$m" && umount -l "$m" || true; done
	;;
esac
