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

# The version of the wasm-bindgen crate that Cargo.lock pins (the CLI must match it exactly).
locked_wasm_bindgen_version() {
    awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/^version = "|"$/, ""); print; exit }' Cargo.lock
}

# Whether the Rust standard library for wasm32-unknown-unknown is installed.
wasm_target_installed() {
    local libdir
    libdir="$(rustc --print target-libdir --target wasm32-unknown-unknown 2>/dev/null)" || return 1
    compgen -G "$libdir/libcore-*.rlib" >/dev/null
}

# Make sure the web client can be built: the wasm32 target and the wasm-bindgen CLI at exactly the
# version in Cargo.lock. Quick when both are present.
ensure_web_toolchain() {
    ensure_rust
    if ! wasm_target_installed; then
        if ! command -v rustup >/dev/null 2>&1; then
            echo "the web client needs the wasm32-unknown-unknown target; install Rust with rustup" >&2
            return 1
        fi
        echo "==> adding the Rust target wasm32-unknown-unknown"
        rustup target add wasm32-unknown-unknown
    fi
    local want have
    want="$(locked_wasm_bindgen_version)"
    if [ -z "$want" ]; then
        echo "Cargo.lock pins no wasm-bindgen version" >&2
        return 1
    fi
    have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
    if [ "$have" != "$want" ]; then
        echo "==> installing wasm-bindgen-cli $want (found: ${have:-none})"
        cargo install --quiet --force wasm-bindgen-cli --version "$want"
    fi
}

# Build the web client into mobile/dist (mobile/build-web.sh), then add the PWA files from web/
# (service worker, manifest, icons). The server serves mobile/dist at `/`.
build_web() {
    if [ ! -f mobile/build-web.sh ]; then
        echo "mobile/build-web.sh is missing: cannot build the web client" >&2
        return 1
    fi
    echo "==> building the web client into mobile/dist"
    bash mobile/build-web.sh
    mkdir -p mobile/dist
    cp -R web/. mobile/dist/
    # Gzipped copies beside the larger files: the server sends them to browsers that take gzip.
    find mobile/dist -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' \) -size +1k \
        -exec gzip -9 --keep --force {} +
}
