# syntax=docker/dockerfile:1
# Build stage: the locked runtime set (no dev or lab groups) into /app/.venv.
FROM python:3.11-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-default-groups --no-install-project
COPY service ./service
RUN uv sync --locked --no-default-groups --no-editable

# Runtime stage: the venv only, as an unprivileged user.
FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 pickup \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /app pickup
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_ENV=production \
    HOST=:: \
    PORT=8080 \
    JSON_DATA_PATH=/app/data/pickup.json
RUN mkdir -p /app/data && chown 10001:10001 /app/data
# Railway passes the deployed commit as a build argument; /metrics shows it in pickup_build_info.
ARG RAILWAY_GIT_COMMIT_SHA=""
ENV BUILD_COMMIT=${RAILWAY_GIT_COMMIT_SHA}
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=2)"]
# uvicorn stops accepting, lets in-flight requests finish (SHUTDOWN_GRACE_S), then exits.
STOPSIGNAL SIGTERM
CMD ["pickup", "serve"]
