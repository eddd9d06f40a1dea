#!/usr/bin/env bash
# Runs examples/session.jsonl through bin/podman-worker and prints every
# line it answers (build progress included).
#
# With PODMAN_SOCKET_PATH pointing at a running Podman service, that service
# is used. Otherwise a private `podman system service` is started in a temp
# folder (its own storage, the project's containers.conf) and stopped at the
# end, and a busybox base image is made from the host's static busybox, since
# no registry is needed or assumed.
set -euo pipefail
cd "$(dirname "$0")/.."

cleanup() { :; }
trap 'cleanup' EXIT

socket="${PODMAN_SOCKET_PATH:-}"
if [ -z "$socket" ]; then
	dir=$(mktemp -d /tmp/podman-worker-example-XXXXXX)
	socket="$dir/podman.sock"
	echo "starting a private podman service at $socket" >&2
	# The service runs in its own folder: conmon may drop files in its
	# working directory (an "oom" marker on cgroup v1).
	(cd "$dir" && exec env CONTAINERS_CONF="$OLDPWD/testdata/containers.conf" podman --root "$dir/root" --runroot "$dir/runroot" \
		--tmpdir "$dir/tmp" system service --time=0 "unix://$socket" >"$dir/service.log" 2>&1) &
	service=$!
	cleanup() {
		podman --url "unix://$socket" rm -af -t 0 >/dev/null 2>&1 || true
		kill "$service" 2>/dev/null && wait "$service" 2>/dev/null || true
		grep " $dir/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r umount -l 2>/dev/null || true
		rm -rf "$dir"
	}
	for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
fi

if ! podman --url "unix://$socket" image exists localhost/busybox:latest 2>/dev/null; then
	echo "making localhost/busybox:latest from /bin/busybox" >&2
	rootfs=$(mktemp -d)
	mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/root" "$rootfs/tmp"
	chmod 1777 "$rootfs/tmp"
	cp /bin/busybox "$rootfs/bin/busybox"
	for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"; done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
	tar -C "$rootfs" -cf "$rootfs.tar" .
	podman --url "unix://$socket" import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' \
		"$rootfs.tar" localhost/busybox:latest >/dev/null
	rm -rf "$rootfs" "$rootfs.tar"
fi

echo "--- session: examples/session.jsonl -> bin/podman-worker --socket unix://$socket" >&2
# One call at a time, so the session runs top to bottom (calls run in arrival order).
bin/podman-worker --socket "unix://$socket" --max-workers 1 --log-level error <examples/session.jsonl
