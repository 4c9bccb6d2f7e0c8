# The driftline services (predictor, monitor, trainer) and the CLI, for docker-compose.yml.
# Kafka and Redis come from their official images; this image needs neither Java nor redis-server.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DRIFTLINE_HOME=/var/lib/driftline

WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install . && useradd --system --home-dir /var/lib/driftline --create-home driftline
USER driftline

ENTRYPOINT ["driftline"]
CMD ["--help"]
