"""The one marker for errors that are the user's to fix (a bad config, a missing file, a metric a run cannot give).

Each such error keeps its natural built-in base (ValueError, FileNotFoundError, ...) for callers that catch
those, and also derives from :class:`UserError`, so the CLI reports every one of them as a single
``error: <message>`` line with exit status 2 instead of a traceback, without knowing the list.
"""

from __future__ import annotations

__all__ = ["UserError", "UsageError"]


class UserError(Exception):
    """Raised with a message that names what is wrong and what was expected."""


class UsageError(UserError):
    """A command line asks for something impossible: a bad option value, or a verb its run cannot do."""
