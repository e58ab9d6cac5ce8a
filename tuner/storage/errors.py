"""Turning database failures into one sentence a user can act on.

Optuna and SQLAlchemy raise long, driver-specific exceptions (with the URL, password included,
and a link to a FAQ); the tuner shows users one sentence: what went wrong and what to do.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url


class StorageError(RuntimeError):
    """The study database cannot be used; the message says why and what to do."""


class StorageURLError(StorageError):
    """The URL itself is wrong (unparseable, unknown dialect or driver): a configuration error,
    as opposed to a database that is down or missing at the moment."""


def safe_url(url: str) -> str:
    """The URL as it may appear in a message: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url if "@" not in url else "<storage URL>"


def has_password(url: str | None) -> bool:
    """Does the URL hold a password, which safe_url hides (so a command printed with it
    needs the password put back)?"""
    if url is None:
        return False
    try:
        return make_url(url).password is not None
    except Exception:  # unparseable: safe_url printed a placeholder if it may hold one
        return "@" in url


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0].rstrip(".") if text else type(orig).__name__


def as_storage_error(exc: BaseException, url: str, *, busy_timeout_s: float = 30.0) -> StorageError:
    """Map a failure while opening or using the storage at `url` to a StorageError.

    Also meant for the tuner: an OperationalError in the middle of a study (e.g. a database
    locked by another writer for longer than the busy timeout) gets the same wording.
    """
    shown = safe_url(url)
    reason = _first_line(exc)
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, sa_exc.NoSuchModuleError) and shown.startswith("postgres:"):
        return StorageURLError(
            f"storage URL {shown} uses the scheme postgres://, which SQLAlchemy does not accept; "
            "write postgresql+psycopg://... instead"
        )
    if isinstance(exc, sa_exc.NoSuchModuleError):
        return StorageURLError(
            f"storage URL {shown} names a database driver SQLAlchemy does not know ({reason}); "
            "use sqlite:///PATH or a URL of an installed driver, e.g. postgresql+psycopg://..."
        )
    if isinstance(exc, sa_exc.ArgumentError):
        return StorageURLError(
            f"cannot use storage URL {shown!r} ({reason}); give an SQLAlchemy URL such as "
            "sqlite:///tuning.db or postgresql+psycopg://user@host/dbname"
        )
    if isinstance(exc, ImportError):
        cause = exc.__cause__ or exc
        return StorageURLError(
            f"the database driver for {shown} is not installed ({cause}); "
            f"{_install_hint(url)} or use sqlite:///tuning.db"
        )
    lowered = reason.lower()
    if "locked" in lowered or "busy" in lowered:
        return StorageError(
            f"the database {shown} stayed locked by another process for {busy_timeout_s:g} s; "
            "stop the other writer or retry when it is done"
        )
    if "unable to open database file" in lowered or "readonly" in lowered:
        return StorageError(
            f"cannot write the database {shown} ({reason}); check that its directory exists "
            "and is writable, or choose another path"
        )
    if "not a database" in lowered:
        return StorageError(
            f"{shown} is not an SQLite database; point the storage URL at a new file "
            "or an existing study database"
        )
    if isinstance(exc, OSError):
        where = f"{exc.filename} for " if exc.filename else ""
        return StorageError(
            f"cannot prepare {where}the database {shown} ({exc.strerror or exc}); "
            "choose a writable path"
        )
    server = _server_error(lowered, reason, shown, make_url_or_none(url))
    if server is not None:
        return server
    if isinstance(exc, sa_exc.DBAPIError):
        return StorageError(
            f"cannot use the database {shown} ({reason}); check that the server is running "
            "and the URL, user and password are right"
        )
    if isinstance(exc, RuntimeError) and "optuna" in lowered:
        return StorageError(
            f"the study database {shown} was written by another Optuna version ({reason}); "
            f"run `optuna storage upgrade --storage {shown}` or use a new database"
        )
    return StorageError(f"cannot use the database {shown} ({reason}); check the storage URL")


def make_url_or_none(url: str) -> URL | None:
    try:
        return make_url(url)
    except Exception:
        return None


def _install_hint(url: str) -> str:
    parsed = make_url_or_none(url)
    if parsed is not None and parsed.get_backend_name() == "postgresql":
        return (
            "pip install 'tfserving-batching-tuner[postgres]' "
            "(psycopg 3, for postgresql+psycopg://)"
        )
    return "pip install it"


def _server_error(lowered: str, reason: str, shown: str, url: URL | None) -> StorageError | None:
    """A database server's own refusals (PostgreSQL, MySQL), each with its fix."""
    where = _where(url)
    if "does not exist" in lowered and "database" in lowered:
        name = url.database if url is not None and url.database else "the database"
        return StorageError(
            f"the database server at {where} has no database {name!r}; create it "
            f"(e.g. `createdb {name}`) or fix the database name in {shown}"
        )
    if "connection refused" in lowered or "no such file or directory" in lowered:
        return StorageError(
            f"no database server answers at {where} ({reason}); start it, or fix the host "
            f"and port in {shown}"
        )
    if "password authentication failed" in lowered or "access denied" in lowered:
        return StorageError(
            f"the database server at {where} refused the user or password ({reason}); fix "
            f"them in {shown}"
        )
    if "could not translate host name" in lowered or "failed to resolve host" in lowered:
        return StorageError(
            f"the database host in {shown} cannot be resolved ({reason}); fix the host name"
        )
    return None


def _where(url: URL | None) -> str:
    if url is None:
        return "the configured address"
    socket_dir = url.query.get("host")
    if not url.host and socket_dir:
        return f"the unix socket in {socket_dir}"
    return f"{url.host or 'localhost'}:{url.port or 5432}"
