"""``voipstudio reconcile``: late, corrected and deleted CDRs beyond the sync's lag.

The sync re-reads the last ``lag`` (6 h) of every run, which catches calls written late. A CDR
written later than that, corrected (re-rated, its ``calldate`` fixed) or deleted afterwards is
never read again. Reconcile, scheduled nightly next to the frequent sync, re-reads the recent
days (7 by default) in full with the sync's verified reader, and applies what changed:

- rows the destination lacks are added, rows whose content differs are merged again, rows the
  API returns again after being marked are unmarked;
- a stored row the API no longer returns, on a day whose re-read added up, is marked
  (``deleted_at``), never deleted, after a lookup by id (a moved ``calldate`` is not a
  deletion), and only within the mass-marking guard's limits;
- everything goes through one dlt load merged on ``(account, id)``, so a changed row's
  ``_dlt_load_id`` says when it changed; the sync's cursors are never touched.

Older history is checked more cheaply with ``--since DATE --counts-only``: per-day counts in
the API and in the destination, and a full re-read of the days that differ. Counts are a
pre-filter only: they cannot see a correction, and a deletion and a late row on the same day
cancel out.

Modules: ``account`` (one account: read, compare, guard, confirm), ``run`` (lock, accounts, the
load), ``stored`` (what the destination holds), ``content`` (row digests), ``days`` (wall-clock
days), ``settings`` (``[reconcile]``), ``summary`` (what is reported).
"""

from __future__ import annotations

from pipelines.reconcile.run import ReconcileOptions, run_reconcile
from pipelines.reconcile.settings import ReconcileSettings, load_reconcile_settings
from pipelines.reconcile.summary import AccountResult, DayResult, ReconcileSummary

__all__ = [
    "AccountResult",
    "DayResult",
    "ReconcileOptions",
    "ReconcileSettings",
    "ReconcileSummary",
    "load_reconcile_settings",
    "run_reconcile",
]
