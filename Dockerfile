# One image for every chronic process (workers, codec server, migrations, operator CLI); the
# compose file picks the process with the command. Base images are pinned to exact versions:
# bump them on purpose, together with a test run.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11.14-slim-bookworm
COPY --from=uv /uv /usr/local/bin/uv
# copy: no hard links out of the build cache; bytecode compiled once at build time, not at every
# container start; the image's Python only (uv never downloads one).
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never
WORKDIR /app

# Dependencies first, from the lock file alone: this layer survives source-only changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project

COPY chronic chronic
COPY models models
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY migrations migrations
RUN uv sync --locked --no-dev

# An unprivileged user; its home is the state folder (nothing is kept there when every secret
# comes from the environment, as in docker-compose.yml).
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/chronic chronic
USER chronic
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 CHRONIC_STATE_DIR=/var/lib/chronic
ENTRYPOINT ["chronic"]
