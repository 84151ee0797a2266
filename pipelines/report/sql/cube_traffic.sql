-- Carried traffic per account and hour (agg_traffic_hourly): holding seconds add up across
-- accounts, the peak of concurrent calls does not (several accounts' is counted again by
-- peaks.sql).
select
    call_date, account, cast(hour_start_epoch as bigint), hour_of_day,
    strftime(hour_start_local, '%Y-%m-%dT%H:%M'),
    holding_seconds, call_attempts, peak_concurrent_calls
from {ds}.agg_traffic_hourly
where account in ({accounts}) and call_date between $start and $end
order by hour_start_epoch, account
