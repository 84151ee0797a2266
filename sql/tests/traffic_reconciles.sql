-- test: agg_traffic_hourly splits every talked second into exactly one hour and counts every
-- call attempt once; each day with talk has exactly one busy hour, hours are consecutive
with totals as (
    select
        (select sum(talk_seconds) from fct_calls) as call_talk_seconds,
        (select sum(talk_seconds) from agg_traffic_hourly) as hourly_talk_seconds,
        (select count(*) from fct_calls) as calls,
        (select sum(call_attempts) from agg_traffic_hourly) as hourly_attempts
),

days as (
    select
        call_date,
        count(case when is_busy_hour then 1 end) as busy_hours,
        sum(talk_seconds) as talk_seconds
    from agg_traffic_hourly
    group by call_date
),

gaps as (
    select
        hour_start_epoch,
        hour_start_epoch - lag(hour_start_epoch) over (order by hour_start_epoch) as step
    from agg_traffic_hourly
)

select 'talk or attempts do not add up' as problem, cast(null as date) as call_date
from totals
where
    coalesce(call_talk_seconds, 0) <> coalesce(hourly_talk_seconds, 0)
    or coalesce(calls, 0) <> coalesce(hourly_attempts, 0)
union all
select 'not exactly one busy hour', call_date
from days
where (talk_seconds > 0 and busy_hours <> 1) or (talk_seconds = 0 and busy_hours <> 0)
union all
select 'hours not consecutive', cast(null as date)
from gaps
where step is not null and step <> 3600
