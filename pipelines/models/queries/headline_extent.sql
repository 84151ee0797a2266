-- The headline's period (the days with inbound calls) and the days of it that are not complete yet (agg_calls_daily.is_complete:
-- the first day loaded, and the days still inside the sync's lag), over the chosen accounts;
-- the service-level threshold the marts were built with.
select
    min(case when direction = 'inbound' then call_date end),
    max(case when direction = 'inbound' then call_date end),
    count(distinct case when not is_complete then call_date end),
    min(case when not is_complete then call_date end),
    max(case when not is_complete then call_date end),
    max(service_level_seconds)
from voipstudio.agg_calls_daily
where {accounts}
