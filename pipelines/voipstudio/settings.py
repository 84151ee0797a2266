"""Constants and typed settings of the VoIPstudio source.

The settings are dlt configuration specs (``@configspec``): each key, its type and its default
are written here once; dlt reads them from ``.dlt/config.toml`` / ``.dlt/secrets.toml`` and the
environment (``SOURCES__VOIPSTUDIO__<KEY>``), and the README's configuration reference is
checked against them by a test.

- :class:`AccountSettings`: what an account may set for itself, in ``[sources.voipstudio]``
  or in its own ``[sources.voipstudio.accounts.<name>]`` (a key an account does not set is
  taken from ``[sources.voipstudio]``, as dlt looks a key up in the enclosing sections).
- :class:`SourceSettings`: ``[sources.voipstudio]`` itself: the above, the single account's
  credentials and name, and which collections load.

Credentials are never shared: a named account's are read from its own section only (see
``accounts``).
"""

from __future__ import annotations

from dlt.common.configuration import configspec
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue

SOURCE_NAME = "voipstudio"
SECTIONS = ("sources", SOURCE_NAME)
ACCOUNTS_KEY = "accounts"

# The API's documented maximum page size; the default page size is undocumented, so every
# request sends `limit`.
MAX_PAGE_SIZE = 5000
# A first sync starts this long before today unless `start_date` says otherwise.
DEFAULT_START_DAYS_AGO = 30
# Every row names the account it came from in this column.
ACCOUNT_COLUMN = "account"
# When `voipstudio reconcile` found that the API no longer returns a record (null: it does).
# Rows are never deleted by the project; the models leave marked rows out.
DELETED_AT_COLUMN = "deleted_at"
# Every field the API sends that has no column of its own, as the text of one JSON object.
EXTRA_FIELDS_COLUMN = "extra_fields"

# A range is cut into windows of at most this many pages, so that pages are fetched in
# parallel and a long backfill commits progress window by window.
WINDOW_PAGES = 10
# Pages are handed to dlt in tables of about this many rows (dlt's per-item cost is fixed).
YIELD_ROWS = 50_000
# How many windows' count probes run at once while planning a range.
MAX_SPLIT = 64
# A window whose pages do not add up to the reported `total` is fetched again (or cut smaller
# and read again) this many times.
WINDOW_ATTEMPTS = 5
# A `total` that is a round number (a multiple of this, or a power of two of at least this) may
# be a cap rather than a count (search-backed APIs report at most 10,000): it never ends a window
# or sizes one on its own word.
ROUND_TOTAL = 100
# A window whose count is at a cap the run has learnt is cut into at least this many parts.
CAPPED_SPLIT = 8

# HTTP behaviour that is not a setting (the settings are below).
CONNECT_TIMEOUT_SECONDS = 15.0
BACKOFF_MAX_SECONDS = 30.0
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Throttling answered with another status than 429 (VoIPstudio has answered 400 "Maximum per
# minute call rate exceeded"): an answer of one of these statuses whose message matches is
# retried as a throttle. A regular expression, matched case-insensitively.
THROTTLE_STATUSES = frozenset({400, 403, 420})
THROTTLE_MESSAGE = (
    r"rate.?limit|call rate|request rate|too many (requests|calls)|throttl|quota|"
    r"per (second|minute|hour|day)|(calls|requests) per"
)
# Redirects followed per attempt (only on the same host; see client.redirect_allowed).
MAX_REDIRECTS = 5

API_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@configspec
class AccountSettings(BaseConfiguration):
    """What one account may set for itself (README, Configuration).

    One attempt of a request, from connecting to its last byte, may take ``request_timeout``;
    one request, all its attempts and the waits between them included, ``request_budget``; the
    failed attempts and waits of one account's sync, summed over its requests,
    ``failure_budget`` (throttling is not a failure). With the defaults a server that never
    answers fails the sync in about 5 minutes (README, Retries).

    Attributes:
        base_url: the API's base URL.
        start_date: where the first sync starts (``YYYY-MM-DD[ HH:MM:SS]`` in ``timezone``,
            included); None: 30 days before today.
        lag: how far before its cursor each sync reads again, for records written late (CDRs
            are written when a call ends, hours after ``calldate`` for long calls): ``6h``,
            ``90m``, ``2d`` or seconds.
        page_size: records per request, 1 to 5000 (the API's maximum).
        max_concurrency: requests in flight at once, 1 to 64.
        timezone: the IANA zone of the API's wall-clock date texts.
        max_attempts: attempts per request before giving up.
        request_timeout: seconds one attempt may take, to the answer's last byte.
        backoff_base: seconds before the first retry, doubled for each further one.
        request_budget: seconds one request may take, all its attempts and waits included.
        failure_budget: seconds of failed attempts and retry waits one account's sync
            tolerates, summed over its requests (throttling excluded).
    """

    base_url: str = "https://l7api.com/v1.2/voipstudio"
    start_date: str | None = None
    lag: str = "6h"
    page_size: int = MAX_PAGE_SIZE
    max_concurrency: int = 4
    timezone: str = "UTC"
    max_attempts: int = 8
    request_timeout: float = 60.0
    backoff_base: float = 0.5
    request_budget: float = 300.0
    failure_budget: float = 900.0


@configspec
class SourceSettings(AccountSettings):
    """``[sources.voipstudio]``: every account's shared settings, and the single account's own.

    Attributes:
        api_key: the single account's API key (``X-Auth-Token``); preferred.
        email: its login, when there is no API key.
        password: its login password.
        account: the name the single account's rows carry in ``account``.
        resources: the collections a sync loads when ``--resources`` does not say,
            comma-separated (``cdrs,users,queues,voicemessages``).
    """

    api_key: TSecretStrValue | None = None
    email: str | None = None
    password: TSecretStrValue | None = None
    account: str = "default"
    resources: str = "cdrs,users,queues"


CREDENTIAL_KEYS = ("api_key", "email", "password")
