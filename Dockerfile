# One image for every promptq process: the API (default CMD), the Celery worker, Flower,
# migrations (`alembic upgrade head`) and the provider simulator (`python -m sim`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

RUN groupadd --system promptq \
    && useradd --system --gid promptq --home-dir /app --no-create-home promptq

# The installable packages first (see [tool.setuptools.packages.find] in pyproject.toml).
COPY pyproject.toml README.md ./
COPY api ./api
COPY worker ./worker
COPY shared ./shared
COPY sim ./sim
COPY devstack ./devstack
RUN pip install --no-cache-dir . \
    && rm -rf build *.egg-info

# Migrations are run from the working directory (alembic.ini sits at the root).
COPY alembic.ini ./
COPY migrations ./migrations

USER promptq

EXPOSE 8000

# WEB_CONCURRENCY sets the number of gunicorn worker processes (gunicorn's default: 1).
CMD ["gunicorn", "api.wsgi:app", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--threads", "4", "--worker-tmp-dir", "/dev/shm", "--access-logfile", "-", "--graceful-timeout", "10", "--limit-request-line", "8190"]
