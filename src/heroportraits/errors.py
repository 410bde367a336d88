"""The one base class for errors a user can fix (bad input, bad config, a wrong checkpoint).

The CLI prints a `HeroError` as one line, `error: ...`, and exits 2; any other exception is a
bug and keeps its traceback. It subclasses ValueError so library callers may catch either.
"""

from __future__ import annotations


class HeroError(ValueError):
    """A problem with the user's input, named with what to do about it."""
