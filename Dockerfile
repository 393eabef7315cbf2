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
# Behind a TLS-inspecting proxy, mount the host's CA bundle for the build only, so it never lands
# in a layer:  --volume /etc/ssl/certs/ca-certificates.crt:/run/pip-ca.pem:ro --build-arg PIP_CERT=/run/pip-ca.pem
ARG BASE=python:3.12-slim

FROM ${BASE} AS builder
ARG PYTHON=python3
# pip reads PIP_CERT from the environment of the RUN steps below; build args are not copied into
# the final stage, and the file itself is a build-time mount.
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
RUN "${PYTHON}" -m venv /opt/venv
# Dependencies first, from the lock alone: this layer is reused until requirements.lock changes.
# Bytecode is compiled here, with hashes rather than timestamps (the read-only venv never changes),
# for everything but msgraph-sdk's generated tree: 16,000 modules, 125 MB of .pyc, of which a pass
# imports about 20. Compiling them all doubled the image's files and more than doubled the build
# time; the few a pass uses are compiled in memory at import, in about 30 ms.
COPY requirements.lock /src/requirements.lock
RUN /opt/venv/bin/pip install --no-cache-dir --no-compile --require-hashes --only-binary=:all: \
        -r /src/requirements.lock \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        -x '/msgraph/generated/' /opt/venv/lib
# Then the project itself, as a wheel built from the sources .dockerignore lets through. The venv's
# own pip is not needed at run time: removing it keeps an installer out of the image.
COPY . /src
RUN /opt/venv/bin/pip install --no-cache-dir --no-compile --no-deps /src \
    && /opt/venv/bin/pip uninstall --yes pip \
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
