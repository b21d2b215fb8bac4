# One image for every role; the compose file picks the role with the command.
FROM python:3.11-slim
COPY --from=ghcr.io/astral-sh/uv:latest /uv /usr/local/bin/uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY chronic chronic
COPY models models
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY migrations migrations
RUN uv sync --locked --no-dev
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1
ENTRYPOINT ["chronic"]
