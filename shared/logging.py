"""structlog JSON logging for every process: one JSON object per line, from structlog's loggers
and from the standard library's (Celery's, gunicorn's, kombu's) alike.

request_id, job_id, user_id, attempt and model are bound as context variables
(`structlog.contextvars`), so every line written while a request or a job runs carries them.
"""

from __future__ import annotations

import logging
import sys

import structlog

_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    # Fields a standard-library caller passed as `extra=` (gunicorn's access line).
    structlog.stdlib.ExtraAdder(),
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def line_formatter(json: bool = True) -> logging.Formatter:
    """The formatter every handler of promptq's processes uses."""
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Route stdlib and structlog output to stderr as one JSON object per line."""
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(line_formatter(json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Python's warnings (Celery's SecurityWarning, deprecations) as log lines too, not as text.
    logging.captureWarnings(True)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
