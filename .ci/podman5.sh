#!/usr/bin/env bash
# Starts a Podman 5 service (Debian 13's podman) in a Debian 13 root, for the
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

stop_service() {
	[ -f "$R/run/pw/pid" ] || return 0
	local pid
	pid=$(cat "$R/run/pw/pid")
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$R/run/pw/pid"
	# Podman keeps an exec session's conmon for 5 minutes after the
	# command (--exit-delay 300); its clean-up would find no service.
	pkill -f -- "-b /var/lib/pw/root/overlay-containers/" 2>/dev/null || true
}

unmount_all() {
	local m
	for m in "$R/dev" "$R/sys" "$R/proc" "$R"; do mounted "$m" && umount -l "$m" || true; done
}

case "${1:-start}" in
start)
	if [ ! -x "$R/usr/bin/podman" ]; then
		if ! command -v debootstrap >/dev/null; then
			DEBIAN_FRONTEND=noninteractive apt-get update -qq
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
		fi
		# A root left half-built by an earlier attempt is started over (one
		# retry, for a flaky mirror); its log is shown if both fail.
		for attempt in 1 2; do
			stop_service
			unmount_all
			if grep -q " $R/" /proc/mounts; then echo "still mounted under $R; not removing it" >&2; exit 1; fi
			rm -rf "$R"
			debootstrap --variant=minbase --include=podman,runc,busybox-static trixie "$R" \
				http://deb.debian.org/debian >"$R.log" 2>&1 && break
			[ $attempt = 2 ] && { tail -20 "$R.log" >&2; echo "debootstrap failed; see $R.log" >&2; exit 1; }
		done
	fi
	# Image unpacking fails unless the root is a mount point of its own.
	mounted "$R" || mount --bind "$R" "$R"
	mounted "$R/proc" || mount -t proc proc "$R/proc"
	mounted "$R/sys" || mount --rbind /sys "$R/sys"
	mounted "$R/dev" || mount --rbind /dev "$R/dev"
	stop_service # one service at a time
	cp testdata/containers.conf "$R/etc/containers/podman-worker.conf"
	mkdir -p "$R/run/pw"
	# Build bundles that cancelled builds leave behind stay in here.
	rm -rf "$R/var/tmp/pw" && mkdir -p "$R/var/tmp/pw"
	# Each run starts on an empty store, as the Podman 4 tests' private
	# services do: volumes, images and containers of an earlier run (made
	# by an older worker, without the labels that say whose they are) are
	# not carried into this one.
	{ grep -o " $R/var/lib/pw[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
	rm -rf "$R/var/lib/pw" "$R/run/pw/runroot"
	rm -f "$R$SOCK"
	# The service gets a mount namespace whose root IS the Debian 13 tree
	# (pivot_root, not chroot): runc exec and Podman's copy into a running
	# container enter the container's mount namespace with setns, which
	# starts at the namespace's root. Under a plain chroot that root is the
	# host's, so exec sessions and archive calls would see the host's files.
	# The repository is bind-mounted at the same path inside, so that
	# host paths the tests mount into containers (testdata) exist there.
	repo=$(pwd)
	setsid unshare --mount --propagation private sh -ec "
		mkdir -p '$R$repo'; mount --bind '$repo' '$R$repo'
		cd '$R'; mkdir -p .old-root; pivot_root . .old-root; cd /
		umount -l /.old-root
		cd /run/pw
		exec env CONTAINERS_CONF=/etc/containers/podman-worker.conf TMPDIR=/var/tmp/pw \
			podman --root /var/lib/pw/root --runroot /run/pw/runroot system service --time=0 unix://$SOCK
	" >"$R/run/pw/service.log" 2>&1 &
	echo $! >"$R/run/pw/pid" # setsid, unshare, sh and env all exec: podman's pid
	for _ in $(seq 150); do [ -S "$R$SOCK" ] && break; sleep 0.2; done
	[ -S "$R$SOCK" ] || { echo "podman 5 service did not start; see $R/run/pw/service.log" >&2; exit 1; }
	echo "$R$SOCK"
	;;
stop)
	stop_service
	unmount_all
	;;
esac
