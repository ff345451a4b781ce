"""structlog set-up: JSON lines off a TTY (journald), console on a TTY, secrets scrubbed everywhere."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from quantbot.secrets import Redactor

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class _Scrub:
    """Last processor before rendering: removes secret values from every key and the traceback."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
        return {k: self.redactor.scrub_any(v) for k, v in event_dict.items()}


def setup_logging(
    *, level: str = "info", fmt: str = "auto", redactor: Redactor | None = None, stream: TextIO | None = None
) -> None:
    """Configure structlog for the process. Safe to call again (SIGHUP changes the level)."""
    stream = stream or sys.stdout
    redactor = redactor or Redactor()
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, _Scrub(redactor), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the stdlib (asyncio, aiohttp, httpx under solana-py and aptos-sdk) go the same way,
    # scrubbed too: httpx logs every request's URL, where RPC providers put API keys.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _Scrub(redactor),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    for chatty in ("httpx", "httpx2", "httpcore"):  # a line per request: not for the journal
        logging.getLogger(chatty).setLevel(max(LEVELS[level], logging.WARNING))


def bind(**values: Any) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(**values)
    return logger
