# greenflame server image: `greenflame serve` with PostgreSQL and S3 support.
#
# Docker cannot run where this file was written: it is checked by tests/server/test_deploy_files.py
# (every `greenflame` command line parses with the CLI, every GREENFLAME_* variable is a declared
# setting), not built there. Build and run:
#   docker build -t greenflame .
#   docker run -p 8080:8080 -e GREENFLAME_ADMIN_TOKEN=... -v greenflame-data:/data greenflame
# Settings are GREENFLAME_* variables (docs/api.md); compose.yaml wires PostgreSQL and MinIO.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY agent ./agent
COPY analyzer ./analyzer
COPY server ./server
COPY cli ./cli
COPY devtools ./devtools
RUN pip install ".[server,postgres]" \
    && useradd --system --uid 10001 --home-dir /data --create-home greenflame \
    && greenflame serve --help > /dev/null

# The data folder holds the admin token and the key sealing ticket credentials (keep it on a
# volume); with the default SQLite database and folder blobs it also holds every profile.
ENV GREENFLAME_DATA_DIR=/data \
    GREENFLAME_HOST=0.0.0.0 \
    GREENFLAME_PORT=8080 \
    GREENFLAME_LOG_FORMAT=json
VOLUME ["/data"]
USER greenflame
WORKDIR /data
EXPOSE 8080

# Liveness; orchestrators should also probe /readyz (database reachable, schema at head).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/livez', timeout=4)"]

# SIGTERM stops waitress, which finishes the requests in progress.
STOPSIGNAL SIGTERM
CMD ["greenflame", "serve"]
