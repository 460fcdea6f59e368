"""Structured logs: one JSON object a line, with the ids that let anyone follow an incident."""
from __future__ import annotations

import json
import logging
import logging.config
from datetime import datetime, timezone
from typing import Any

# Attributes a log call may carry in `extra=`; they are lifted into the JSON object.
CONTEXT_FIELDS = (
    "service", "event_id", "event_type", "report_id", "incident_id", "unit_id", "topic",
    "partition", "offset", "reason", "correlationid",
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "spkt") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def logging_config(service: str, level: str = "INFO") -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "service": service}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            # Chatty at INFO; their warnings still come through.
            "aiokafka": {"level": "WARNING"},
            "kafka": {"level": "WARNING"},
            "faust": {"level": "INFO"},
            "mode": {"level": "WARNING"},
            "uvicorn.access": {"level": "WARNING"},
            "httpx": {"level": "WARNING"},
        },
    }


def configure(service: str, level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(service, level))
