"""Flower's configuration: `celery -A worker.celery_app flower --conf=worker/flower_config.py`.

Flower executes this file and takes every top-level name that is one of its options (tornado's
`parse_config_file`), so everything else here starts with an underscore. The values come from
promptq's settings (the environment, then `.env`), as every other process's do; options given on
Flower's command line still win (`--port`, `--address`).

- `basic_auth` from FLOWER_BASIC_AUTH, `user:password` (several: comma-separated, as Flower's
  own variable of that name reads). Without it Flower shows every task's arguments to, and lets
  revoke tasks and shut workers down, anyone who reaches its port: it refuses to start.
- `persistent` and `db` (FLOWER_DB): its view of workers and tasks survives a restart; saved
  every minute as well as at shutdown, so a crash loses at most that.
- The broker. Flower reads queue lengths itself (flower/utils/broker.py: LLEN of each queue and
  of its priority lists, with the transport options' `priority_steps`, `sep`, timeouts), and only
  for a broker URL whose scheme is `redis`. The workers' app names its transport by module path
  (worker/broker_transport.py), so its URL reads `worker.broker_transport:Transport://...` and
  Flower's broker page and /api/queues/length answer 404. Flower consumes no tasks, so the crash
  that transport works around (restoring unacknowledged messages on reconnect) cannot happen
  here: Flower uses kombu's own Redis transport, with the workers' transport options unchanged.
  Which queues it lists comes from the workers' `active_queues` (all five once a job worker and
  a webhook worker are up), else from the app's `task_queues` (the same five).
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

from shared.logging import configure_logging as _configure_logging
from shared.settings import get_settings as _get_settings
from worker.celery_app import app as _app

_settings = _get_settings()
_credentials = [c.strip() for c in _settings.flower_basic_auth.split(",") if c.strip()]
if not _credentials:
    _sys.exit(
        "flower: FLOWER_BASIC_AUTH is not set; set it to user:password (environment or .env) "
        "so that Flower's UI and API are not open to everyone"
    )
if any(not user or not password for user, _, password in (c.partition(":") for c in _credentials)):
    _sys.exit("flower: FLOWER_BASIC_AUTH must be user:password (comma-separated for several)")

basic_auth = _credentials
persistent = True
db = _settings.flower_db
state_save_interval = 60_000  # milliseconds
# shelve does not create the folder its file goes in.
_Path(db).parent.mkdir(parents=True, exist_ok=True)

_app.conf.broker_transport = "redis"

# Flower's lines in promptq's format (JSON by default) rather than tornado's own.
logging = "none"
_configure_logging(_settings.log_level, _settings.log_json)
