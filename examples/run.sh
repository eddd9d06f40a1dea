#!/usr/bin/env bash
# Pipes examples/session.jsonl through bin/podman-worker and prints every
# line it writes: worker.ready, the build's progress, the function's JSON
# output, the listings, the clean-up.
#
# No socket is passed: the worker uses a Podman service that answers at
# the default locations, or else starts its own (storage in
# /var/lib/podman-worker, or --podman-root) with the settings this
# host needs, and stops it when the session ends. Set
# PODMAN_SOCKET_PATH to use a service of your own instead.
set -euo pipefail
cd "$(dirname "$0")/.."

# The function image is built FROM scratch around the host's static
# busybox, so no registry is needed.
cp /bin/busybox examples/function/busybox

# One call at a time, so the session runs top to bottom (calls run in
# arrival order). Builds are refused unless the operator names the folders
# contexts may come from: here examples/, so the session's context
# "function" (relative, so taken relative to the first build root) is
# examples/function.
exec bin/podman-worker --max-workers 1 --log-level warn \
	--build-roots "$PWD/examples" <examples/session.jsonl
