# syntax=docker/dockerfile:1
#
# health-equity-indicators: one image for every Airflow component in docker-compose.yml.
#
# Built on plain Python (not apache/airflow) so that requirements.lock is the single
# source of every version, Airflow included. Build with `docker compose build`.

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow

# Lets Airflow (getpass.getuser) and tools work when compose runs the image under an
# AIRFLOW_UID that has no /etc/passwd entry.
ENV HOME=/opt/airflow \
    USER=airflow

# curl is used by the compose healthchecks (api-server /api/v2/version, scheduler /health);
# Pango and a font are what WeasyPrint needs to render the assurance report's PDF.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
        libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# Non-root runtime user, same uid as the official image (50000) and group 0, so the
# container also runs under an arbitrary `AIRFLOW_UID:0` (see docker-compose.yml).
RUN useradd --uid 50000 --gid 0 --home-dir /opt/airflow --no-create-home \
        --shell /bin/bash airflow \
    && mkdir -p /opt/airflow/logs /opt/airflow/auth \
    && chown -R 50000:0 /opt/airflow \
    && chmod -R g+rwX /opt/airflow

# 1) Third-party dependencies, exactly as locked (hash-checked). This layer is cached
#    until requirements.lock changes.
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
    && pip install --require-hashes --no-deps -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock

# 2) The project itself (transforms/, hei/, dags/, synth/) as a wheel, without re-resolving
#    anything. SQL, the catalogue, the reference data and the DAG files are package data,
#    found through importlib.resources, so nothing depends on the source tree.
COPY . /tmp/hei-src
RUN pip install --no-deps /tmp/hei-src \
    && pip check \
    && rm -rf /tmp/hei-src \
    && cd / && python -c "import transforms.warehouse.ddl as d; assert d.SQL_DIR.is_dir()" \
    && test -f /opt/venv/lib/python3.11/site-packages/dags/ingest_sources.py \
    && python -c "from pathlib import Path; from hei.airflow_env import write_local_settings as w; w(Path('/opt/airflow'))"
WORKDIR /opt/airflow

# Cap glibc malloc arenas: loading threads otherwise keep freed memory (see hei.cli).
ENV MALLOC_ARENA_MAX=2 \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/venv/lib/python3.11/site-packages/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=false

# Run as the airflow user (uid 50000, group 0); compose may override with AIRFLOW_UID.
USER 50000:0

ENTRYPOINT ["airflow"]
CMD ["--help"]
