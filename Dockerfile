# syntax=docker/dockerfile:1
#
# One image, two entry points:
#   docker run IMAGE operator ...   -> switchyard operator
#   docker run IMAGE gateway ...    -> switchyard gateway   (the default command)
#
# Stage 1 builds a virtualenv with the switchyard distribution and its dependencies
# (compilers and pip stay there); stage 2 copies only that virtualenv onto the same pinned
# Python base, removes pip, and runs as a non-root user. For fully reproducible builds,
# replace the version tag below with its digest (python:3.12.8-slim-bookworm@sha256:...).

#
# PYTHON_IMAGE may be any Debian-based image with python (>= 3.11) and its venv module: the
# local test node (hack/node/images.sh) builds this file on Debian bookworm's python3.
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm
# Wheels exist for every dependency on linux/amd64 and arm64; build-essential is here only
# for platforms where one has to be compiled, and never reaches the final stage. Empty:
# no apt-get at all (hack/node/images.sh, on amd64).
ARG BUILD_PACKAGES=build-essential

FROM ${PYTHON_IMAGE} AS build
ARG BUILD_PACKAGES
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN if [ -n "$BUILD_PACKAGES" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends $BUILD_PACKAGES \
        && rm -rf /var/lib/apt/lists/*; \
    fi
RUN python -m venv /opt/switchyard
WORKDIR /src
# Dependencies first, from the lock alone (exact versions, hashes checked), so a code change
# reuses this layer and every build installs the same packages CI tested.
COPY requirements/runtime.lock /tmp/runtime.lock
RUN /opt/switchyard/bin/pip install --no-compile --require-hashes -r /tmp/runtime.lock \
    && /opt/switchyard/bin/pip install --no-compile "setuptools>=77" wheel
COPY pyproject.toml README.md LICENSE ./
COPY common/ common/
COPY operator/ operator/
COPY gateway/ gateway/
COPY cli/ cli/
COPY testkit/ testkit/
RUN /opt/switchyard/bin/pip install --no-compile --no-deps . \
    && /opt/switchyard/bin/pip uninstall -y setuptools wheel \
    && /opt/switchyard/bin/python -m compileall -q /opt/switchyard/lib \
    && /opt/switchyard/bin/switchyard --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="switchyard" \
      org.opencontainers.image.description="Kubernetes-native AI gateway: operator and gateway" \
      org.opencontainers.image.source="https://github.com/switchyard-dev/switchyard" \
      org.opencontainers.image.licenses="Apache-2.0"
# No package manager front-ends in the final image: pip and its friends go.
RUN python -m pip uninstall -y pip setuptools wheel 2>/dev/null || true \
    && rm -rf /root/.cache /usr/local/lib/python3.*/ensurepip
COPY --from=build /opt/switchyard /opt/switchyard
# A passwd entry for the runtime user: kopf (and anything else calling getpass.getuser())
# looks the uid up and crashes on "uid not found" without one.
RUN groupadd --gid 65532 switchyard \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin switchyard
ENV PATH="/opt/switchyard/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# 65532 is the conventional "nonroot" id; the chart runs with runAsNonRoot and a
# read-only root filesystem, with /tmp as an emptyDir.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["switchyard"]
CMD ["gateway"]
