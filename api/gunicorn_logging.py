"""gunicorn's error and access lines in promptq's JSON (LOG_JSON), the access line as fields."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger

from shared.logging import line_formatter
from shared.settings import get_settings


class JsonGunicornLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = line_formatter(get_settings().log_json)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        request_id = next(
            (value for name, value in resp.headers if name.lower() == "x-request-id"), None
        )
        self.access_log.log(
            logging.INFO,
            "http.access",
            extra={
                "request_id": request_id,
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "status": int(status),
                "bytes": getattr(resp, "sent", None),
                "duration_ms": round(request_time.total_seconds() * 1000, 3),
                "remote_addr": environ.get("REMOTE_ADDR"),
                "user_agent": environ.get("HTTP_USER_AGENT"),
            },
        )
