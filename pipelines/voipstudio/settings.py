"""Constants of the VoIPstudio source."""

from __future__ import annotations

DEFAULT_BASE_URL = "https://l7api.com/v1.2/voipstudio"
SOURCE_NAME = "voipstudio"

# The API's documented maximum page size; the default page size is undocumented, so every
# request sends `limit`.
MAX_PAGE_SIZE = 5000
DEFAULT_PAGE_SIZE = 5000
DEFAULT_MAX_CONCURRENCY = 4
# CDRs are written when a call ends, hours after `calldate` for long calls: every run re-reads
# this much before its cursor, and the merge on `id` absorbs the overlap.
DEFAULT_LAG = "6h"
# A first sync starts this long before today unless `start_date` says otherwise.
DEFAULT_START_DAYS_AGO = 30
DEFAULT_TIMEZONE = "UTC"
RESOURCES = ("cdrs", "users", "queues")
# Every row names the account it came from in this column; the single account of
# [sources.voipstudio] is called this unless its `account` key says otherwise.
ACCOUNT_COLUMN = "account"
DEFAULT_ACCOUNT = "default"
# When `voipstudio reconcile` found that the API no longer returns a CDR (null: it does). Rows
# are never deleted by the project; the models leave marked rows out.
DELETED_AT_COLUMN = "deleted_at"

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

# HTTP behaviour. One attempt of a request, from connecting to its last byte, may take
# TIMEOUT_SECONDS; one request, all its attempts and the waits between them included, may take
# REQUEST_BUDGET_SECONDS; the failed attempts and waits of one account's sync, summed over its
# requests, may add up to FAILURE_BUDGET_SECONDS (throttling is not a failure). With these
# defaults a server that never answers fails the sync in about 5 minutes (README, Retries).
TIMEOUT_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 15.0
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
REQUEST_BUDGET_SECONDS = 300.0
FAILURE_BUDGET_SECONDS = 900.0
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
REJECTS_TABLE = "cdrs_rejects"
