# syntax=docker/dockerfile:1
# One image recipe for the light services (no torch): classifier, trainer, gateway.
#   docker build -f deploy/docker/service.Dockerfile --build-arg SERVICE=gateway \
#     --build-arg PORT=8000 -t polyhead/gateway:0.1.0 .
# The trainer needs torch for fitting: build it with --build-arg EXTRAS=trainer (torch's CPU
# build, as the lock says). A service without services/<name>/app.py and
# deploy/gunicorn/<name>.py stops the build at the check below. The embedder has its own
# Dockerfiles (it needs the model).
#
# SERVICE: package under services/. PORT: the port deploy/gunicorn/<name>.py binds by default
# (the health probe uses it unless <NAME>_BIND is set). EXTRAS: optional pyproject extras.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a self-contained venv in /opt/venv ---------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore UV_PYTHON=/opt/venv/bin/python
WORKDIR /src
# The pinned installer (uv), hash-checked, outside the venv the image ships.
COPY requirements ./requirements
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/uv.txt \
 && python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The dependencies first, each at the version and hash of requirements/cpu.txt (the lock CI
# tested), in their own layer. The trainer's torch is the CPU build (2.13.0+cpu), on PyTorch's
# CPU index: PyPI's Linux wheel is the CUDA build (GBs more).
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --constraints requirements/cpu.txt --verify-hashes \
      --extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match \
      -r pyproject.toml ${EXTRAS:+--extra "${EXTRAS}"}
COPY README.md ./
COPY shared ./shared
COPY services ./services
RUN uv pip install --no-deps --build-constraints requirements/cpu.txt .

# --- runtime --------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
ARG PORT=8000
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    POLYHEAD_ENV=prod \
    POLYHEAD_SERVICE=${SERVICE} \
    POLYHEAD_PORT=${PORT} \
    POLYHEAD_BIND=0.0.0.0:${PORT}
RUN useradd --create-home --uid 10001 --user-group polyhead \
 && install -d -o 10001 -g 10001 /inference-log  # the gateway's local log (a volume there)
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY deploy ./deploy
# Fail the build, not the container, when SERVICE is missing or has no app/config yet.
RUN case "${SERVICE}" in \
      ""|embedder) echo "build with --build-arg SERVICE=classifier|trainer|gateway" >&2; exit 1;; \
    esac; \
    test -f "deploy/gunicorn/${SERVICE}.py" \
      || { echo "deploy/gunicorn/${SERVICE}.py does not exist (service not written yet?)" >&2; exit 1; }; \
    python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('services.${SERVICE}.app') is None)" \
      || { echo "services/${SERVICE}/app.py does not exist (service not written yet?)" >&2; exit 1; }
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE ${PORT}
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "deploy/docker/healthcheck.py", "/health"]
# sh -c so the service name (an env var) picks the config; exec keeps gunicorn as PID 1.
CMD ["sh", "-c", "exec gunicorn -c deploy/gunicorn/${POLYHEAD_SERVICE}.py"]
