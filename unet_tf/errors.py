"""The one exception type that means "the user's input is wrong".

The CLI prints these as a single line and exits with code 2; anything else is a bug
and keeps its traceback.
"""

from collections.abc import Sequence


class UserError(Exception):
    """Bad input that the user can fix; the message names the file and the fix."""


def list_some(items: Sequence[object], limit: int = 5) -> str:
    """Format a few items and a count of the rest, for error messages about many files."""
    shown = ", ".join(str(i) for i in items[:limit])
    rest = len(items) - limit
    return f"{shown} (and {rest} more)" if rest > 0 else shown
