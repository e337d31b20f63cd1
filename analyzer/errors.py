"""The one error type for user mistakes, shared by the library, the server and the command line.

A :class:`UserError` is something the user can fix: a missing or corrupt file, a bad option, a
setting that cannot work, an unmet precondition. The command line prints it as one line and
exits with status 2; the server answers it as a JSON error. Anything else is a bug.

The agent keeps its own :class:`greenflame.agent.config.ConfigError` (the agent imports nothing
else of greenflame's, so that it installs alone); the command line treats both alike.
"""

from __future__ import annotations


class UserError(Exception):
    """A user mistake or an unmet precondition; the message is one line, for the user."""
