# Shared helpers for scripts/test and scripts/run. Source it; do not execute it.
# shellcheck shell=bash

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# Install Debian packages quietly. The package lists are refreshed once per run.
apt_install() {
    if [ -z "${HOMEWARD_APT_UPDATED:-}" ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -qq update
        HOMEWARD_APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends "$@" >/dev/null
}

# Make sure a Rust toolchain (cargo, rustc and a C compiler/linker for build scripts) is usable.
ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    if ! command -v cc >/dev/null 2>&1; then
        echo "==> installing a C toolchain (build-essential)"
        apt_install build-essential
    fi
    # Web Push payload encryption (the ece crate) links OpenSSL.
    if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists openssl 2>/dev/null; then
        echo "==> installing OpenSSL headers (libssl-dev, pkg-config)"
        apt_install pkg-config libssl-dev
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "==> installing Rust with rustup"
        command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
            | sh -s -- -y --quiet --profile minimal
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    if ! cargo --version >/dev/null 2>&1; then
        # rustup is present but has no default toolchain yet.
        rustup default stable
    fi
}
