"""The Optuna database a sweep lives in: SQLite in the sweep folder by default, or any SQLAlchemy URL
(PostgreSQL, MySQL) that several machines share.

Optuna's RDB storage is used for both because it has heartbeats: a trial whose process died stops
beating and is rerun, while trials other machines are running are left alone. Several local processes on
one SQLite file are safe with a lock timeout for writers, plus one file lock around claiming a trial:
SQLite ignores the row lock Optuna takes there, so two processes could otherwise claim the same trial.
"""

from __future__ import annotations

import contextlib
import importlib.util
import random
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dlx.errors import DlxError

DATABASE_FILE = "sweep.db"
STORAGE_ENV = "DLX_SWEEP_STORAGE"  # hands the URL (password included) to worker processes


def default_storage_url(sweep_folder: Path) -> str:
    return f"sqlite:///{(sweep_folder / DATABASE_FILE).resolve()}"


def with_installed_driver(url: str) -> str:
    """SQLAlchemy 2.1 reads `postgresql://` as psycopg 3; use psycopg2 when only that one is installed."""
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None:
        if importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def masked(url: str) -> str:
    """The URL without its password, for printing and for sweep.json."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


SCHEMA_ATTEMPTS = 5


def open_storage(
    url: str,
    heartbeat_seconds: int | None = None,
    on_interrupted_trial: Callable[[Any, Any], None] | None = None,
) -> Any:
    """An Optuna RDBStorage, or a DlxError naming the URL when the database cannot be reached."""
    import optuna
    from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

    typed, url = url, with_installed_driver(url)
    heartbeat = {}
    if heartbeat_seconds:
        heartbeat = {
            "heartbeat_interval": heartbeat_seconds,
            "grace_period": 3 * heartbeat_seconds,
            "heartbeat_stale_trial_callback": on_interrupted_trial,
        }
    try:
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return optuna.storages.RDBStorage(url, engine_kwargs=_engine_options(url), **heartbeat)
            except IntegrityError:
                # Another worker is creating Optuna's tables in an empty database at this very moment
                # (a duplicate key): they exist once it is done.
                if attempt == SCHEMA_ATTEMPTS - 1:
                    raise
                time.sleep(0.5 + random.random())
    except ArgumentError:
        raise DlxError(
            f"--storage {masked(typed)} is not a database URL. Type e.g. "
            "`--storage postgresql://user:password@host:5432/sweeps` or `--storage sqlite:///sweeps.db`."
        ) from None
    except ImportError as error:
        raise DlxError(
            f"--storage {masked(typed)} needs a database driver that is not installed ({error}). Install it, "
            "e.g. `pip install psycopg2-binary` for PostgreSQL."
        ) from None
    except SQLAlchemyError as error:
        reason = " ".join(str(getattr(error, "orig", None) or error).split())[:300].rstrip(".")
        raise DlxError(
            f"Cannot reach the sweep storage {masked(typed)}: {reason}{'' if reason.endswith('?') else '.'} "
            "Check that the database server is running and the URL (host, port, user, database) is right; "
            "no trial was started."
        ) from None


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}  # wait for another process's write instead of failing
    if url.startswith("postgresql"):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    if url.startswith("mysql"):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    return {}


@contextlib.contextmanager
def claim_lock(url: str) -> Iterator[None]:
    """Serialise claiming a trial among the processes sharing a SQLite file (a server locks rows itself)."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database if url.startswith("sqlite") else None
    if not database:
        yield
        return
    from filelock import FileLock

    lock = Path(database).with_name(f".{Path(database).name}.claim-lock")
    with FileLock(str(lock), timeout=120):
        yield
