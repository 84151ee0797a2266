"""Accounts, login tokens and API keys of the emulator.

As on the live API: ``POST /login`` returns a user token that expires after a period of
inactivity (30 minutes; each request resets the clock), ``/apitokens`` mints long-lived keys
(``expiry`` seconds of inactivity, ``0`` = never), and a request authenticates with
``X-Auth-Token: TOKEN`` or HTTP Basic ``user_id:token``. A token acts as its user: an admin
user's tokens see the whole company, a plain user's only that user's records.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# What the API documentation's examples show: 32 lowercase hex digits.
DEFAULT_TOKEN_LENGTH = 32
DEFAULT_TOKEN_ALPHABET = "0123456789abcdef"  # noqa: S105 - an alphabet, not a secret
_MIN_TOKEN_LENGTH = 16


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Account:
    """A user who can log in."""

    user_id: int
    email: str
    password: str
    first_name: str = "Admin"
    last_name: str = "User"
    customer_id: int = 521156
    two_factor_code: str | None = None
    admin: bool = True  # an admin user's tokens see the whole company

    def me(self) -> dict[str, Any]:
        """The body of ``GET /me``."""
        return {
            "id": self.user_id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "customer_id": self.customer_id,
        }


@dataclass
class Token:
    """A login token or an API key."""

    token: str
    user_id: int
    kind: str  # "login" or "api"
    idle_expiry: float  # seconds of inactivity before it stops working; 0 = never
    name: str | None = None
    host: str | None = None
    user_agent: str | None = None
    created_at: str = field(default_factory=_now_text)
    last_request_at: str | None = None
    last_seen: float = field(default_factory=time.monotonic)
    revoked: bool = False
    expired: bool = False
    # Creation order: GET /apitokens serves keys in it (they have no id of their own).
    sequence: int = 0

    def public(self, customer_id: int) -> dict[str, Any]:
        """The API's representation of an API key."""
        return {
            "user_id": self.user_id,
            "token": self.token,
            "customer_id": customer_id,
            "name": self.name,
            "host": self.host,
            "user_agent": self.user_agent,
            "expiry": int(self.idle_expiry),
            "last_request_at": self.last_request_at,
            "created_at": self.created_at,
        }


class AuthError(Exception):
    """A request that must be answered 401."""


@dataclass(frozen=True)
class TokenFormat:
    """How minted tokens (login tokens, API keys) look: opaque random text.

    Attributes:
        length: characters per token, at least 16.
        alphabet: the characters drawn from (printable ASCII, no spaces), at least two.
    """

    length: int = DEFAULT_TOKEN_LENGTH
    alphabet: str = DEFAULT_TOKEN_ALPHABET

    def __post_init__(self) -> None:
        if isinstance(self.length, bool) or not isinstance(self.length, int):
            raise ValueError(f"token_length must be an integer, got {self.length!r}")
        if self.length < _MIN_TOKEN_LENGTH:
            raise ValueError(f"token_length must be at least {_MIN_TOKEN_LENGTH}")
        allowed = set(string.printable) - set(string.whitespace)
        if not isinstance(self.alphabet, str) or not set(self.alphabet) <= allowed:
            raise ValueError("token_alphabet must be printable ASCII characters without spaces")
        if len(set(self.alphabet)) < 2:
            raise ValueError("token_alphabet needs at least two different characters")

    def mint(self) -> str:
        """A new random token."""
        return "".join(secrets.choice(self.alphabet) for _ in range(self.length))


class TokenStore:
    """Every account and token of the emulator; safe to use from several threads."""

    def __init__(
        self,
        accounts: list[Account],
        login_ttl: float = 1800.0,
        clock: Callable[[], float] = time.monotonic,
        token_format: TokenFormat | None = None,
    ) -> None:
        self.accounts = {account.user_id: account for account in accounts}
        self.login_ttl = login_ttl
        self.token_format = token_format or TokenFormat()
        self._clock = clock
        self._tokens: dict[str, Token] = {}
        self._nonces: dict[str, int] = {}
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()

    def account_by_email(self, email: str) -> Account | None:
        """The account with this email, if any."""
        return next((a for a in self.accounts.values() if a.email == email), None)

    def add_api_key(self, user_id: int, token: str, name: str, expiry: float = 0) -> Token:
        """Register a known API key (the emulator's configured keys, or ``POST /apitokens``)."""
        with self._lock:
            entry = Token(
                token,
                user_id,
                "api",
                expiry,
                name=name,
                last_seen=self._clock(),
                sequence=next(self._sequence),
            )
            self._tokens[token] = entry
        return entry

    def login(self, email: str, password: str) -> tuple[str, Account] | tuple[None, Account]:
        """Check credentials. Returns a new token, or ``None`` and the account when a second
        factor is needed (see :meth:`start_two_factor`).

        Raises:
            AuthError: wrong email or password.
        """
        account = self.account_by_email(email)
        if account is None or not secrets.compare_digest(account.password, password):
            raise AuthError("Invalid credentials")
        if account.two_factor_code is not None:
            return None, account
        return self._issue_login(account), account

    def start_two_factor(self, account: Account) -> str:
        """A nonce for ``POST /login2fa``."""
        nonce = secrets.token_hex(16)
        with self._lock:
            self._nonces[nonce] = account.user_id
        return nonce

    def finish_two_factor(self, nonce: str, code: str) -> tuple[str, Account]:
        """Complete a two-factor login.

        Raises:
            AuthError: unknown nonce or wrong code.
        """
        with self._lock:
            user_id = self._nonces.get(nonce)
        account = self.accounts.get(user_id) if user_id is not None else None
        if account is None or account.two_factor_code is None:
            raise AuthError("Invalid or expired nonce")
        if not secrets.compare_digest(account.two_factor_code, code):
            raise AuthError("Invalid two-factor code")
        with self._lock:
            self._nonces.pop(nonce, None)
        return self._issue_login(account), account

    def _issue_login(self, account: Account) -> str:
        token = self.token_format.mint()
        with self._lock:
            self._tokens[token] = Token(
                token,
                account.user_id,
                "login",
                self.login_ttl,
                last_seen=self._clock(),
                sequence=next(self._sequence),
            )
        return token

    def authenticate(self, headers: dict[str, str]) -> Account:
        """The account behind a request's credentials; touching the token resets its idle clock.

        Raises:
            AuthError: no, unknown, expired or revoked credentials.
        """
        token_text = headers.get("x-auth-token")
        basic_user: int | None = None
        if token_text is None:
            authorization = headers.get("authorization", "")
            if authorization.lower().startswith("basic "):
                try:
                    decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
                    user_text, _, token_text = decoded.partition(":")
                    basic_user = int(user_text)
                except (binascii.Error, UnicodeDecodeError, ValueError):
                    raise AuthError("Malformed Basic credentials") from None
        if not token_text:
            raise AuthError("Missing X-Auth-Token header")
        now = self._clock()
        with self._lock:
            entry = self._tokens.get(token_text)
            if entry is None or entry.revoked:
                raise AuthError("Invalid or revoked token")
            if basic_user is not None and basic_user != entry.user_id:
                raise AuthError("Token does not belong to this user")
            ttl = self.login_ttl if entry.kind == "login" else entry.idle_expiry
            if entry.expired or (ttl and now - entry.last_seen > ttl):
                raise AuthError("Token expired")
            entry.last_seen = now
            entry.last_request_at = _now_text()
        return self.accounts[entry.user_id]

    def create_api_token(
        self, account: Account, name: str, expiry: float, host: str | None, user_agent: str | None
    ) -> Token:
        """``POST /apitokens``.

        Raises:
            ValueError: a key with this name exists for this user.
        """
        with self._lock:
            if any(
                t.kind == "api"
                and t.name == name
                and t.user_id == account.user_id
                and not t.revoked
                for t in self._tokens.values()
            ):
                raise ValueError(f"An API key named {name!r} exists already")
        entry = self.add_api_key(account.user_id, self.token_format.mint(), name, expiry)
        entry.host, entry.user_agent = host, user_agent
        return entry

    def api_tokens(self) -> list[Token]:
        """Every live API key, oldest first (``GET /apitokens`` shows a user its own)."""
        with self._lock:
            return [t for t in self._tokens.values() if t.kind == "api" and not t.revoked]

    def revoke(self, token: str, user_id: int | None = None) -> bool:
        """Revoke a token (only the owner's, when ``user_id`` is given)."""
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None or entry.revoked or (user_id is not None and entry.user_id != user_id):
                return False
            entry.revoked = True
            return True

    def expire(self, kind: str | None = None) -> int:
        """Make tokens (all, or only ``"login"`` / ``"api"`` ones) expire now, as if idle.

        Returns:
            How many tokens were expired.
        """
        count = 0
        with self._lock:
            for entry in self._tokens.values():
                if kind is None or entry.kind == kind:
                    entry.expired = True
                    count += 1
        return count
