# Sourced by .ci/run: a Python virtual environment with the Lytics client the compatibility
# test drives (lytics-api-wrapper 0.0.4, whose post() sends JSON with no Content-Type, and
# requests, which it imports without declaring). Installs python3 and python3-venv with apt on
# a fresh Debian 12 (as root) when missing; pip only talks to PyPI. Exports AUTHD_TEST_PYTHON
# (read by crates/server/tests/api/lenient_input.rs). The venv is kept under target/ and reused.

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "== installing python3 and python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends python3 python3-venv
fi
PY_VENV="${CARGO_TARGET_DIR:-target}/ci-python"
if [ ! -x "$PY_VENV/bin/python" ]; then
    python3 -m venv "$PY_VENV"
fi
"$PY_VENV/bin/pip" install --quiet --disable-pip-version-check \
    lytics-api-wrapper==0.0.4 requests==2.32.3
AUTHD_TEST_PYTHON="$(cd "$PY_VENV/bin" && pwd)/python"
export AUTHD_TEST_PYTHON
echo "== Python client for the compatibility test: $AUTHD_TEST_PYTHON"
