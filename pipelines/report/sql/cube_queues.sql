-- The queue intervals of the accounts in the window (agg_queue_interval: one row per account,
-- interval and queue; agg_queue_daily is their sum, so the registry's queue metrics apply to
-- these rows). The minute of the local day the interval starts at places it on the day's axis.
select
    *,
    cast(hour(interval_start_local) * 60 + minute(interval_start_local) as integer)
        as interval_minute
from {ds}.agg_queue_interval
where account in ({accounts}) and call_date between $start and $end
