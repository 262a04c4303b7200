"""The warehouse rides out an outage: an operation that loses its connection waits for the
database to come back and runs again, whole, for up to ``PATIENCE`` seconds.

A sync holds what it fetched in memory until its batch is written: failing the step on a lost
connection (and letting Dagster's retry policy, which gives up after about 23 seconds, start
the step again) loses those calls' results and pays for them twice. Every operation of the
store is one transaction and safe to run again: claims and grants only take what is still
free, upserts are idempotent, a batch's completion checks whose claim it is (and a completion
whose commit was lost on the way back is recognised as done).

Only the signs of a connection lost or refused are waited out (an error of SQL itself is not).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa

log = logging.getLogger(__name__)

PATIENCE = 300.0  # seconds an operation waits for the warehouse before it fails
F = TypeVar("F", bound=Callable[..., Any])

_LOST = (
    "could not connect",
    "connection refused",
    "connection reset",
    "server closed the connection",
    "terminating connection",
    "connection already closed",
    "connection is closed",
    "ssl syscall",
    "no connection to the server",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "database is locked",
    "connection timed out",
    "could not receive data",
    "could not send data",
    "eof detected",
)


def lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached, rather than refused the SQL."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        text = str(exc).lower()
        return any(sign in text for sign in _LOST)
    return False


def patient(method: F) -> F:
    """Run ``method`` again while the warehouse cannot be reached, for up to ``PATIENCE`` seconds."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        waited, pause = 0.0, 0.5
        while True:
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                if not lost_connection(exc) or waited >= PATIENCE:
                    raise
                log.warning(
                    f"the warehouse cannot be reached ({type(exc).__name__}); {method.__name__} runs again in "
                    f"{pause:g}s ({waited:g}s waited so far, at most {PATIENCE:g}s)"
                )
                time.sleep(pause)
                waited, pause = waited + pause, min(2 * pause, 10.0)

    return wrapper  # type: ignore[return-value]


def patient_class(cls: type, skip: frozenset[str] = frozenset()) -> type:
    """Every public method of ``cls`` (and of its bases) made ``patient``, but those in ``skip``."""
    for name in dir(cls):
        if name.startswith("_") or name in skip:
            continue
        attribute = getattr(cls, name)
        if callable(attribute) and not isinstance(attribute, type):
            setattr(cls, name, patient(attribute))
    return cls
