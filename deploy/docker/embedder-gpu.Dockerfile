# syntax=docker/dockerfile:1
# The embedder, NVIDIA GPU build. From the repository root:
#   docker build -f deploy/docker/embedder-gpu.Dockerfile -t polyhead/embedder-gpu:0.1.0 .
#   docker run --gpus all -p 8001:8001 polyhead/embedder-gpu:0.1.0
# A plain Python base is enough: the CUDA torch wheel brings the CUDA runtime libraries as pip
# packages (nvidia-*), and the NVIDIA container toolkit mounts the host's driver at run time.
#
# requirements/cuda.txt locks PyPI's torch 2.13.0 Linux wheel, built for CUDA 13.0 (needs a host
# driver >= 580). For an older driver, lock a CUDA 12.x build of the same release instead (the
# README's "Installs" section says how) and build with --build-arg LOCK=requirements/<yours>.txt.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a self-contained venv in /opt/venv ---------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ARG LOCK=requirements/cuda.txt
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore UV_PYTHON=/opt/venv/bin/python
WORKDIR /src
# The pinned installer (uv), hash-checked, outside the venv the image ships.
COPY requirements ./requirements
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/uv.txt \
 && python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The dependencies first (torch's CUDA build is a few GB), each at the version and hash of the
# lock, in their own layer so source edits don't re-download them.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --constraints "${LOCK}" --verify-hashes -r pyproject.toml --extra embedder
COPY README.md ./
COPY shared ./shared
COPY services ./services
RUN uv pip install --no-deps --build-constraints "${LOCK}" .

# --- runtime --------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# NVIDIA_*: what the container toolkit exposes when the runtime is nvidia (compose's device
# reservation and `--gpus` set them too). EMBEDDER_DTYPE stays auto: fp16 on CUDA.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    POLYHEAD_ENV=prod \
    POLYHEAD_SERVICE=embedder \
    EMBEDDER_BIND=0.0.0.0:8001 \
    EMBEDDER_DEVICE=cuda
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
# One worker per GPU (see deploy/gunicorn/embedder.py).
CMD ["gunicorn", "-c", "deploy/gunicorn/embedder.py"]
