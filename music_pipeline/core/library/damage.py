"""What goes wrong with a catalog, as sentences: a damaged or emptied SQLite file, a full
disk, a read-only folder, a PostgreSQL server that does not answer (its password never
shown). Every transaction of the catalog runs inside :func:`errors`."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from ..domain.errors import DiskFull, Reason, TrackError


class CatalogError(TrackError):
    """The catalog cannot be used (a newer schema, an unknown track, a damaged file)."""

    reason = Reason.CATALOG


SQLITE_HEADER = b"SQLite format 3\x00"


def damage(path: Path) -> str | None:
    """What is wrong with the catalog file at ``path`` before SQLite even opens it (None:
    nothing seen). SQLite would take an empty file for a new database and start afresh,
    forgetting every track while their files stay: never let it."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return None
    if not header:
        return "it is empty (0 bytes)"
    if header != SQLITE_HEADER:
        return "it is not an SQLite database (its header is wrong)"
    return None


def damaged(path: Path, why: str) -> CatalogError:
    return CatalogError(
        f"The catalog {path} is damaged: {why}. It was left exactly as it is; nothing was replaced.",
        hint="Restore it from a backup (Time Machine, a copy of the library), or move it aside to start an "
             "empty catalog (the files in the library stay where they are). `music-pipeline doctor` checks it.")


@contextlib.contextmanager
def errors(where: str) -> Iterator[None]:
    """The database's failures as sentences: a damaged file, a full disk, a read-only folder,
    a server that does not answer. ``where`` names the catalog (its URL without password)."""
    try:
        yield
    except sa.exc.DBAPIError as err:
        _explain(where, err.orig if err.orig is not None else err, err)
        raise err.orig if isinstance(err.orig, sqlite3.IntegrityError) else err from None
    except sqlite3.DatabaseError as err:  # a file opened without SQLAlchemy (a new catalog being built)
        _explain(where, err, err)
        raise


def _explain(path: str, err: BaseException, cause: BaseException) -> None:
    """Raise the sentence for ``err`` when there is one; return when it is none of these."""
    if isinstance(err, sqlite3.DatabaseError):
        code = (getattr(err, "sqlite_errorcode", 0) or 0) & 0xFF  # the primary code of an extended one
        text = str(err)
        if code == sqlite3.SQLITE_FULL:
            raise DiskFull(f"The disk holding the catalog {path} is full ({text}); nothing was recorded.",
                           hint="Free some space on the library's volume and run again.") from cause
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            raise damaged(path, text) from cause
        if code == sqlite3.SQLITE_IOERR:
            raise CatalogError(f"The catalog {path} could not be read or written ({text}).",
                               hint="Is the library's drive still connected and its volume mounted?") from cause
        if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
            raise CatalogError(f"The catalog {path} cannot be written ({text}).",
                               hint="Check that the library folder is writable and its volume mounted.") from cause
        return
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    name = type(err).__name__
    kinds = {kind.__name__ for kind in type(err).__mro__}  # psycopg2's AdminShutdown is an OperationalError
    if ("OperationalError" in kinds and ("connect" in text or "server" in text or "timeout" in text)) or \
            ("InterfaceError" in kinds and "closed" in text):
        raise CatalogError(f"The catalog database {path} cannot be reached ({text}).",
                           hint="Is the PostgreSQL server running and MUSIC_CATALOG_URL right (host, port, "
                                "user, password, database)? `music-pipeline doctor` checks it.") from cause
    if name == "DiskFull" or "No space left" in text or "could not extend file" in text:
        raise DiskFull(f"The disk holding the catalog database {path} is full ({text}); nothing was recorded.",
                       hint="Free some space on the database server and run again.") from cause
