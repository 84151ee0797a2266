"""Errors of the source, each carrying the process exit code the CLI ends with.

Their messages are written for the person running the sync: what went wrong and how to fix it,
in one line, and never with a credential in it.
"""

from __future__ import annotations


class VoipstudioError(Exception):
    """Base class; ``exit_code`` is what ``voipstudio`` exits with."""

    exit_code = 1


class ConfigError(VoipstudioError):
    """A missing or invalid setting."""

    exit_code = 2


class AuthError(VoipstudioError):
    """The API refused the credentials (or asked for a second factor)."""

    exit_code = 3


class ApiUnavailableError(VoipstudioError):
    """The API could not be reached or kept failing after every retry."""

    exit_code = 4


class ApiRequestError(VoipstudioError):
    """The API rejected a request (4xx other than auth): a bug or an API change."""

    exit_code = 4


class DataCheckError(VoipstudioError):
    """Pages of a window never added up to the total the API reported."""

    exit_code = 5


class LockedError(VoipstudioError):
    """Another sync of the same pipeline is running."""

    exit_code = 75
