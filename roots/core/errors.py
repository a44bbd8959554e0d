"""Error types that the CLI turns into exit codes instead of tracebacks."""

from __future__ import annotations


class UserError(Exception):
    """Bad usage or invalid input: the CLI prints the message and exits with status 2.

    The message must say which file, line or field is wrong and what to do about it, because the
    person reading it is a steward or an operator, not a developer.
    """

    exit_code = 2


class JobError(Exception):
    """The job itself failed (a stage crashed, a model is unusable): exit status 1."""

    exit_code = 1
