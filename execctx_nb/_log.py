"""The package logger and the protocol any accepted logger follows."""

from __future__ import annotations

import logging
from typing import Any, Protocol

__all__ = ["LoggerLike", "get_logger"]

logger = logging.getLogger("execctx_nb")
logger.addHandler(logging.NullHandler())


class LoggerLike(Protocol):
    """Anything with debug/info/warning/error: a stdlib Logger, structlog, loguru ..."""

    def debug(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def info(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def warning(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def error(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...


def get_logger(given: LoggerLike | None = None) -> LoggerLike:
    """Return ``given`` or the package logger ``execctx_nb``."""
    return given if given is not None else logger
