"""structlog configuration: one JSON object per line, with personal data and secrets removed.

Redaction runs as the last processor before rendering, so it also sees context bound elsewhere
(contextvars, `bind`) and formatted tracebacks. Standard-library loggers (uvicorn, asyncpg) are
routed through the same processors, so nothing reaches the output unredacted.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, Literal, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from service.observability import accesslog

REDACTED = "[REDACTED]"

_SECRET_SUBSTRINGS = ("authorization", "password", "passwd", "secret", "pickup_code", "cookie")
_SECRET_SUFFIXES = ("_token", "api_key", "apikey")
# URL userinfo runs to the last "@" before the path; a password may not be percent-encoded.
_URL_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/\s?#]*)@")
_AUTH_SCHEME_VALUE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
# One cheap search decides whether the two substitutions above are needed at all.
_MAYBE_CREDENTIALS = re.compile(r"(?i)://|bearer\s|basic\s")
_MAX_DEPTH = 8
_SCALARS = (int, float, bool, type(None))


@lru_cache(maxsize=1024)
def _classify(key: str) -> Literal["phone", "secret"] | None:
    name = key.lower().replace("-", "_")
    if "phone" in name:
        return "phone"
    if (
        name == "token"
        or name.endswith(_SECRET_SUFFIXES)
        or any(part in name for part in _SECRET_SUBSTRINGS)
    ):
        return "secret"
    return None


def mask_phone(value: object) -> str:
    digits = "".join(ch for ch in str(value) if ch.isdigit())
    if len(digits) < 4:
        return "*" * len(digits)
    return "*" * (len(digits) - 2) + digits[-2:]


def _mask_userinfo(match: re.Match[str]) -> str:
    user, sep, _password = match.group(2).partition(":")
    return f"{match.group(1)}{user}:***@" if sep else f"{match.group(1)}***@"


def scrub_text(text: str) -> str:
    """Remove credentials embedded in free text: URL passwords and Authorization values."""
    if _MAYBE_CREDENTIALS.search(text) is None:
        return text
    text = _URL_USERINFO.sub(_mask_userinfo, text)
    return _AUTH_SCHEME_VALUE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def _redact_value(key: object, value: object, depth: int) -> object:
    if isinstance(key, bytes):
        key = key.decode("latin-1")
    kind = _classify(key) if isinstance(key, str) else None
    if kind == "secret":
        return REDACTED
    if kind == "phone" and value is not None:
        return mask_phone(value)
    return _redact(value, depth + 1)


def _redact(value: object, depth: int) -> object:
    if depth > _MAX_DEPTH:
        return "[TRUNCATED]"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(k, v, depth) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # Header lists are (name, value) pairs: treat the name as the value's key.
        if len(value) == 2 and isinstance(value[0], str | bytes):
            return [value[0], _redact_value(value[0], value[1], depth)]
        return [_redact(item, depth + 1) for item in value]
    return value


def redact_sensitive(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    # Runs on every log line: plain scalars under ordinary keys (most of an access line) are
    # passed over without building anything.
    for key, value in event_dict.items():
        if _classify(key) is None:
            if isinstance(value, str):
                event_dict[key] = scrub_text(value)
                continue
            if isinstance(value, _SCALARS):
                continue
        event_dict[key] = _redact_value(key, value, 0)
    return event_dict


_TRACEBACK = "Traceback (most recent call last):"


def traceback_out_of_event(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """A library that logs a formatted traceback as its message (uvicorn's failed lifespan)
    would put it in `event`: the last line (the error) becomes the event, the rest goes to
    `exception`, where log tools expect it."""
    event = event_dict.get("event")
    if isinstance(event, str) and _TRACEBACK in event:
        head, _, rest = event.partition(_TRACEBACK)
        lines = [line for line in rest.strip().splitlines() if line.strip()]
        event_dict["event"] = head.strip() or (lines[-1] if lines else "traceback")
        event_dict.setdefault("exception", _TRACEBACK + rest)
    return event_dict


# The id of the request being served, added to every line logged while serving it (set and
# reset by the request context middleware). One variable set per request: structlog's
# bind_contextvars/reset_contextvars look their variable up by name and cost ~1.5 µs a request.
REQUEST_ID: ContextVar[str | None] = ContextVar("pickup_request_id", default=None)


def add_request_id(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    # Where merge_contextvars would have put it: after the event's own keys, unless given.
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def add_message(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Platforms' log viewers (Railway) show the `message` field: the event, under that name."""
    event = event_dict.get("event")
    if event is not None and "message" not in event_dict:
        event_dict["message"] = event
    return event_dict


def _dumps(obj: Any, **kwargs: Any) -> str:
    return orjson.dumps(obj, default=kwargs.get("default"), option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(
    level: str = "INFO", json: bool = True, *, stream: TextIO | None = None
) -> None:
    level_no = logging.getLevelNamesMapping()[level.upper()]
    output = sys.stdout if stream is None else stream
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        traceback_out_of_event,
        redact_sensitive,
        add_message,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    # Access lines skip the processor chain (accesslog.py) but keep its JSON shape and redaction;
    # below info, or with console rendering, they go through structlog like any line.
    writer = (
        accesslog.AccessLineWriter(output, scrub=scrub_text)
        if json and level_no <= logging.INFO
        else None
    )
    accesslog.install(writer)
    if writer is not None:
        output = writer.ordered(output)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.PrintLoggerFactory(file=output),
        cache_logger_on_first_use=True,
    )

    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level_no)
    # uvicorn's default config (used whenever a server is started without log_config=None)
    # gives its loggers their own plain-text handlers and stops propagation, which would
    # bypass the redaction above: route them back through the root handler.
    for name in ("uvicorn", "uvicorn.error"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    # Access lines come from our request middleware (with request ids, redacted): uvicorn's
    # own would duplicate every request and cost throughput.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
