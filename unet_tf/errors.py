"""The one exception type that means "the user's input is wrong".

The CLI prints these as a single line and exits with code 2; anything else is a bug
and keeps its traceback.
"""

import errno
from collections.abc import Sequence


class UserError(Exception):
    """Bad input that the user can fix; the message names the file and the fix."""


def list_some(items: Sequence[object], limit: int = 5) -> str:
    """Format a few items and a count of the rest, for error messages about many files."""
    shown = ", ".join(str(i) for i in items[:limit])
    rest = len(items) - limit
    return f"{shown} (and {rest} more)" if rest > 0 else shown


# Failures of the machine, not of the program: the user can fix them by freeing space
# or choosing another folder, so they are reported in one line, not as a traceback.
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "the disk is full; free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is exceeded; free some space or write elsewhere",
    errno.EROFS: "the file system is read-only; choose a writable location",
    errno.EACCES: "permission denied; choose a location you can write to",
    errno.EPERM: "operation not permitted; choose a location you can write to",
}


def os_error_message(exc: OSError) -> str | None:
    """One line for an environment failure (disk full, read-only, no permission), else None."""
    hint = ENVIRONMENT_ERRNOS.get(exc.errno)
    if hint is None:
        return None
    where = f"cannot write {exc.filename}: " if exc.filename else ""
    return f"{where}{hint}"


def first_line(exc: BaseException | str, limit: int = 200) -> str:
    """The first line of an exception's message (or its type), for one-line errors.

    Libraries (h5py, TensorFlow, converters) raise multi-line messages; a user needs the
    first line, and the type name when the message is empty.
    """
    text = str(exc).strip()
    if not text and isinstance(exc, BaseException):
        text = type(exc).__name__
    return text.splitlines()[0][:limit] if text else ""
