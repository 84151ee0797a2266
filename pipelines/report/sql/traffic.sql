-- The accounts' hours summed: carried traffic on holding time (ITU-T E.600, legs from start to
-- end, as agg_traffic_hourly.carried_erlangs). For one account this is the mart's own busy hour
-- (the hour of the day with the most holding time); for several it is ranked again over the
-- summed hours, the only way to find the busy hour of their sum. max(peak_concurrent_calls) is
-- the peak of one account; several accounts' is counted again by peaks.sql.
with hours as (
    select
        hour_start_utc,
        min(hour_start_local) as hour_start_local,
        min(call_date) as call_date,
        min(hour_of_day) as hour_of_day,
        min(hour_start_epoch) as hour_start_epoch,
        sum(holding_seconds) as holding_seconds,
        sum(call_attempts) as call_attempts,
        max(peak_concurrent_calls) as peak_concurrent_calls
    from {ds}.agg_traffic_hourly
    where account in ({accounts}) and call_date between $start and $end
    group by hour_start_utc
)
select
    hour_start_local, call_date, hour_of_day, cast(holding_seconds as double) / 3600,
    call_attempts, peak_concurrent_calls,
    holding_seconds > 0 and row_number() over (
        partition by call_date order by holding_seconds desc, hour_start_epoch
    ) = 1,
    hour_start_epoch
from hours
order by hour_start_utc
