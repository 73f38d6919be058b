"""The one error type users see.

Every failure a user can cause (bad photo, bad audio, unwritable output) is raised as a
``FacetalkError`` whose message is a single line that says what was received and what to do.
The CLI prints it without a traceback and exits with ``exit_code``.
"""

from __future__ import annotations


class FacetalkError(Exception):
    """A user-facing failure: one clear line, mapped to an exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
