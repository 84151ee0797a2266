"""Errors of the source, each carrying the process exit code the CLI ends with.

Their messages are written for the person running the sync: what went wrong and how to fix it,
in one line, and never with a credential in it: every message is redacted when the error is
built (an API that echoes the token in its error message, a transport error quoting a header).
"""

from __future__ import annotations

from typing import Any

from pipelines.voipstudio.redaction import redact


class VoipstudioError(Exception):
    """Base class; ``exit_code`` is what ``voipstudio`` exits with."""

    exit_code = 1

    def __init__(self, message: Any = "", *args: Any) -> None:
        super().__init__(redact(str(message)), *args)


class ConfigError(VoipstudioError):
    """A missing or invalid setting."""

    exit_code = 2


class AuthError(VoipstudioError):
    """The API refused the credentials (or asked for a second factor)."""

    exit_code = 3


class TwoFactorRequiredError(AuthError):
    """The login needs a second factor; ``nonce`` completes it with ``POST /login2fa``."""

    def __init__(self, message: str, nonce: str | None = None) -> None:
        super().__init__(message)
        self.nonce = nonce


class ApiUnavailableError(VoipstudioError):
    """The API could not be reached or kept failing after every retry."""

    exit_code = 4


class ApiRequestError(VoipstudioError):
    """The API rejected a request (4xx other than auth): a bug or an API change."""

    exit_code = 4


class DataCheckError(VoipstudioError):
    """Pages of a window never added up to the total the API reported."""

    exit_code = 5


class ReconcileRefusedError(VoipstudioError):
    """``voipstudio reconcile`` would have marked too many CDRs deleted (the mass-marking guard);
    nothing of the account was changed."""

    exit_code = 9


class LoadFailedError(VoipstudioError):
    """The destination did not take a load; the message says what became of its package."""

    exit_code = 1


class LockedError(VoipstudioError):
    """Another sync of the same pipeline is running."""

    exit_code = 75


class AccountsFailedError(VoipstudioError):
    """Some of the named accounts failed; the others were loaded.

    ``exit_code`` is the first failed account's (by name), so a scheduler sees the same code a
    sync of that account alone would give; ``failures`` maps each failed account to its exit
    code and message; ``summary`` is what the sync did (set by ``run_sync``).
    """

    def __init__(self, failures: dict[str, tuple[int, str]], loaded: list[str]) -> None:
        self.failures = dict(sorted(failures.items()))
        self.exit_code = next(iter(self.failures.values()))[0]
        self.summary: object = None
        parts = [
            f"account '{name}' failed: {message}" for name, (_, message) in self.failures.items()
        ]
        tail = (
            f"the other accounts were loaded ({', '.join(loaded)})"
            if loaded
            else "no account loaded"
        )
        super().__init__(f"{'; '.join(parts)}; {tail}")
