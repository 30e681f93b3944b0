# The project's image: `pee-worker`, `pee` and the codec server (`pee codec-server`);
# docker-compose.yml runs all three from it. Configuration comes from the environment, exactly as on a laptop:
# TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*, TEMPORAL_API_KEY, PEE_* (PEE_CACHE_URL and
# PEE_ARTIFACT_URL with AWS_* name the shared stores), OTEL_*.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# dependencies first, so a code change does not reinstall them
COPY pyproject.toml README.md ./
COPY src src
# installs the console scripts `pee` and `pee-worker`; the otlp extra: OTEL_TRACES_EXPORTER=otlp
# works in the container (tracing profile)
RUN pip install '.[otlp]'

COPY plans plans

# each container's own state (nothing here is shared: the caches and large payloads go to the
# stores PEE_CACHE_URL and PEE_ARTIFACT_URL name)
RUN useradd --uid 10001 --create-home pee && mkdir -p /data && chown pee /data
USER pee
ENV PEE_STATE_DIR=/data/state \
    PEE_RUNS_DIR=/data/runs

CMD ["pee-worker"]
