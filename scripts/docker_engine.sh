#!/usr/bin/env bash
# A Docker-API engine for `make test-docker`, and the images it tests.
#
#   scripts/docker_engine.sh run CMD...   up + base + build, CMD with DOCKER_HOST set, then down
#   scripts/docker_engine.sh up|base|build|down
#
# up:    use the engine that answers (DOCKER_HOST, or /var/run/docker.sock); when none does,
#        install podman from Debian's packages (as root) and serve its Docker-compatible API on
#        a unix socket. Facts of these machines: rootful podman runs containers with runc, the
#        cgroupfs manager and no default ulimits (containers.conf below).
# base:  the Dockerfile's BASE_IMAGE built without Docker Hub: `debootstrap --variant=minbase`
#        with python3 + venv, imported as an image; kept between runs (built once per machine).
#        TUNER_BASE_IMAGE=python:3.11-slim-bookworm skips this where Docker Hub is reachable.
# build: the Dockerfile's targets as tuner-service, tuner-model-server, tuner-tuner; the build
#        cache (layers, and pip's cache mount) makes a rebuild after a code change seconds.
# down:  stop the podman service this script started (nothing else).
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${TUNER_ENGINE_DIR:-$PWD/build/docker-engine}
BASE_IMAGE=${TUNER_BASE_IMAGE:-localhost/tuner-base:bookworm}
TARGETS=(service model-server tuner)
PY=${PYTHON:-.venv/bin/python}
# A unix socket path must stay under 108 bytes, whatever the checkout's depth.
SOCKET=/tmp/tuner-podman-$(printf %s "$PWD" | md5sum | cut -c1-10).sock
mkdir -p "$STATE"

say() { echo "docker-engine: $*" >&2; }

engine_answers() {
    "$PY" -c "import docker; docker.from_env(timeout=3).ping()" >/dev/null 2>&1
}

load_env() {
    # shellcheck disable=SC1091
    [ -f "$STATE/env" ] && . "$STATE/env"
    return 0
}

install_podman() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v catatonit >/dev/null || [ -x /usr/libexec/podman/catatonit ] || missing+=(catatonit)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
        missing+=(docker-compose)
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        say "no Docker engine answers and ${missing[*]} are missing; install them (as root) or start Docker"
        exit 1
    fi
    say "installing ${missing[*]} from Debian's packages (log: $STATE/apt.log)"
    local started=$SECONDS
    {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq "${missing[@]}"
    } >"$STATE/apt.log" 2>&1 || { say "installing failed; see $STATE/apt.log"; exit 1; }
    say "installed in $((SECONDS - started)) s"
}

cmd_up() {
    rm -f "$STATE/env" "$STATE/podman.pid"
    if [ -n "${DOCKER_HOST:-}" ] || [ -S /var/run/docker.sock ]; then
        if engine_answers; then
            say "using the engine at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
            echo "export DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}" >"$STATE/env"
            return 0
        fi
    fi
    install_podman
    cat >"$STATE/containers.conf" <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
    cat >"$STATE/env" <<EOF
export CONTAINERS_CONF=$STATE/containers.conf
export DOCKER_HOST=unix://$SOCKET
export TUNER_ENGINE=podman
EOF
    load_env
    rm -f "$SOCKET"
    # Its own session: `down` stops exactly this process group.
    setsid podman system service --time=0 "unix://$SOCKET" >"$STATE/podman-service.log" 2>&1 &
    echo $! >"$STATE/podman.pid"
    for _ in $(seq 1 60); do
        engine_answers && { say "podman $(podman --version | cut -d' ' -f3) serves the Docker API at $DOCKER_HOST"; return 0; }
        sleep 0.5
    done
    say "podman's API service did not answer within 30 s; see $STATE/podman-service.log"
    exit 1
}

cmd_base() {
    load_env
    if [ -n "${TUNER_BASE_IMAGE:-}" ]; then
        return 0
    fi
    if "$PY" -c "import docker, sys; docker.from_env().images.get(sys.argv[1])" "$BASE_IMAGE" >/dev/null 2>&1; then
        say "base image $BASE_IMAGE is cached"
        return 0
    fi
    local started=$SECONDS root="$STATE/base-root"
    say "building the base image $BASE_IMAGE with debootstrap (about a minute)"
    rm -rf "$root"
    nice -n 10 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$root" http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 \
        || { say "debootstrap failed; see $STATE/debootstrap.log"; exit 1; }
    # Trust this machine's extra CAs (a TLS-inspecting proxy's) for pip inside the builds.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
        chroot "$root" update-ca-certificates >/dev/null 2>&1
    fi
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | import_image "$BASE_IMAGE"
    rm -rf "$root"
    say "base image built in $((SECONDS - started)) s"
}

import_image() {
    if [ "${TUNER_ENGINE:-}" = podman ]; then
        podman import - "$1" >/dev/null
    else
        docker import - "$1" >/dev/null
    fi
}

cmd_build() {
    load_env
    local builder=(docker build)
    [ "${TUNER_ENGINE:-}" = podman ] && builder=(podman build --format docker)
    : >"$STATE/build-times.txt"
    for target in "${TARGETS[@]}"; do
        local started=$SECONDS
        say "building --target $target as tuner-$target"
        if ! nice -n 10 "${builder[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" --target "$target" \
            -t "tuner-$target" . >"$STATE/build-$target.log" 2>&1; then
            tail -n 20 "$STATE/build-$target.log" >&2
            say "building $target failed; see $STATE/build-$target.log"
            exit 1
        fi
        echo "$target $((SECONDS - started))" >>"$STATE/build-times.txt"
    done
    say "built in $(awk '{s += $2} END {print s}' "$STATE/build-times.txt") s: $(tr '\n' ' ' <"$STATE/build-times.txt")"
}

cmd_down() {
    [ -f "$STATE/podman.pid" ] || return 0
    local pid
    pid=$(cat "$STATE/podman.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/podman.pid" "$SOCKET"
    say "stopped the podman API service"
}

cmd_run() {
    local started=$SECONDS rc=0
    trap cmd_down EXIT
    cmd_up
    cmd_base
    cmd_build
    load_env
    "$@" || rc=$?
    say "done in $((SECONDS - started)) s (exit $rc)"
    return $rc
}

case "${1:-}" in
    up) cmd_up ;;
    base) cmd_base ;;
    build) cmd_build ;;
    down) cmd_down ;;
    run) shift; cmd_run "$@" ;;
    *) echo "usage: $0 run CMD... | up | base | build | down" >&2; exit 2 ;;
esac
