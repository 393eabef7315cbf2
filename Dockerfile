# secret-rotator's image: one venv built from requirements.lock (hashes checked), copied onto the same
# base, run as the numeric non-root user 10001 with a read-only root filesystem.
#
#   podman build -t ghcr.io/secret-rotator/secret-rotator:0.1.0 .          (or docker build)
#
# BASE is any Debian-like image with Python 3.11+ and the venv module: the official slim image in
# production, an offline debootstrap base in CI (tests/container). The venv's python is a symlink to
# the base's interpreter, so both stages must use the same BASE, and PYTHON must name that
# interpreter on the base's PATH (python3 is /usr/local/bin/python3 on the official image,
# /usr/bin/python3 on Debian's).
#
# The default BASE is pinned by digest (the multi-platform index of python:3.12-slim; the tag is
# only for the reader): a tag moved on the registry cannot change what is built. Move the pin on
# purpose, to pick up the base's security fixes, with the "Digest:" line of
#   docker buildx imagetools inspect python:3.12-slim
#
# Behind a TLS-inspecting proxy, mount the host's CA bundle for the build only, so it never lands
# in a layer:  --volume /etc/ssl/certs/ca-certificates.crt:/run/pip-ca.pem:ro --build-arg PIP_CERT=/run/pip-ca.pem
ARG BASE=python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea

FROM ${BASE} AS builder
ARG PYTHON=python3
# pip reads PIP_CERT from the environment of the RUN steps below; build args are not copied into
# the final stage, and the file itself is a build-time mount.
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
# Two venvs. /opt/build holds the installer and the build backend; /opt/venv, the one shipped, is made
# without pip (and without the setuptools that Python 3.11's ensurepip adds) and is filled by
# /opt/build's pip through --python, so no installer or build tool ends up in the image.
RUN "${PYTHON}" -m venv /opt/build \
    && "${PYTHON}" -m venv --without-pip /opt/venv
# The build backend (setuptools) from its own lock, hashes checked, as the dependencies are.
COPY requirements-build.lock /src/requirements-build.lock
RUN /opt/build/bin/pip install --no-cache-dir --no-compile --require-hashes --only-binary=:all: \
        -r /src/requirements-build.lock
# Dependencies next, from the lock alone: this layer is reused until requirements.lock changes.
# Bytecode is compiled here, with hashes rather than timestamps (the read-only venv never changes),
# for everything but msgraph-sdk's generated tree: 16,000 modules, 125 MB of .pyc, of which a pass
# imports about 20. Compiling them all doubled the image's files and more than doubled the build
# time; the few a pass uses are compiled in memory at import, in about 30 ms.
COPY requirements.lock /src/requirements.lock
RUN /opt/build/bin/pip --python /opt/venv/bin/python install --no-cache-dir --no-compile --require-hashes \
        --only-binary=:all: -r /src/requirements.lock \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        -x '/msgraph/generated/' /opt/venv/lib
# Then the project itself, as a wheel built from the sources .dockerignore lets through (the
# emulator and the demo stay out). --no-build-isolation builds it with the locked setuptools above
# instead of one pip would fetch unpinned; --no-index makes any download at all an error.
COPY . /src
RUN /opt/build/bin/pip wheel --no-cache-dir --no-build-isolation --no-deps --no-index \
        --wheel-dir /tmp/wheels /src \
    && /opt/build/bin/pip --python /opt/venv/bin/python install --no-cache-dir --no-compile --no-deps \
        --no-index /tmp/wheels/secret_rotator-*.whl \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        /opt/venv/lib/python3*/site-packages/service

FROM ${BASE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="secret-rotator" \
      org.opencontainers.image.description="Keeps Microsoft Entra ID app registration client secrets from ever expiring." \
      org.opencontainers.image.source="https://github.com/secret-rotator/secret-rotator" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}"
# A numeric user and group (Kubernetes' runAsNonRoot can only verify a numeric USER), with no home
# directory: nothing is written outside the state volume. The state directory belongs to it so an
# anonymous volume or an empty docker volume starts out writable.
RUN groupadd --gid 10001 secret-rotator \
    && useradd --no-log-init --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin secret-rotator \
    && install --directory --owner=10001 --group=10001 --mode=0750 /var/lib/secret-rotator
# Owned by root and read-only to the service: the code cannot be changed by the process running it.
COPY --from=builder /opt/venv /opt/venv
# The .pyc files were compiled at install time; with a read-only root nothing could be written anyway.
ENV PATH=/opt/venv/bin:$PATH \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Push receipts (state.backend: file). The only place the service writes.
VOLUME ["/var/lib/secret-rotator"]
USER 10001:10001
# The daemon's /healthz, /readyz and /metrics (--listen, default 0.0.0.0:8080).
EXPOSE 8080
ENTRYPOINT ["secret-rotator"]
CMD ["daemon"]
