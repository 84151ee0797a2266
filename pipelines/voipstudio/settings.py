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

# HTTP behaviour.
TIMEOUT_SECONDS = 60.0
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

API_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
REJECTS_TABLE = "cdrs_rejects"
