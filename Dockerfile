# One image for every promptq process: the API (default CMD), the Celery worker, Flower,
# migrations (`alembic upgrade head`) and the provider simulator (`python -m sim`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

RUN groupadd --system promptq \
    && useradd --system --gid promptq --home-dir /app --no-create-home promptq

# The runtime dependencies alone, at the versions of requirements.lock (the versions CI tests),
# in a layer of their own: a change to the code does not reinstall them.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/runtime.txt \
    && pip install --no-cache-dir -c requirements.lock -r /tmp/runtime.txt \
    && rm /tmp/runtime.txt

# The installable packages (see [tool.setuptools.packages.find] in pyproject.toml); their
# dependencies are all in place, and pip check says so.
COPY README.md ./
COPY api ./api
COPY worker ./worker
COPY shared ./shared
COPY sim ./sim
COPY devstack ./devstack
# The client and the user commands of the `promptq` CLI (api/cli.py registers them).
COPY promptq ./promptq
RUN pip install --no-cache-dir --no-deps . \
    && pip check \
    && rm -rf build *.egg-info

# Migrations are run from the working directory (alembic.ini sits at the root).
COPY alembic.ini ./
COPY migrations ./migrations

# The settings' default state files (BEAT_SCHEDULE_FILE, FLOWER_DB) live in .data/; a named
# volume mounted there starts with this owner.
RUN mkdir /app/.data && chown promptq:promptq /app/.data

USER promptq

EXPOSE 8000

# The API's liveness; compose gives each other process its own check. No curl in slim images.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3)"]

# WEB_CONCURRENCY sets the number of gunicorn worker processes (gunicorn's default: 1).
# api.gunicorn_conf: metrics summed over those processes (PROMETHEUS_MULTIPROC_DIR, else a
# fresh temporary folder) and gunicorn's lines as JSON.
CMD ["gunicorn", "--config", "python:api.gunicorn_conf", "api.wsgi:app", "--bind", "0.0.0.0:8000", "--worker-class", "gevent", "--worker-connections", "1000", "--worker-tmp-dir", "/dev/shm", "--access-logfile", "-", "--graceful-timeout", "10", "--limit-request-line", "8190"]
