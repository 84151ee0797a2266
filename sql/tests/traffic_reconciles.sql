-- test: agg_traffic_hourly splits every talked second of an account into exactly one of the
-- account's hours and counts each of its call attempts once; each account's day with talk has
-- exactly one busy hour; each account's hours are consecutive
with call_totals as (
    select account, sum(talk_seconds) as talk_seconds, count(*) as calls
    from fct_calls
    group by account
),

hourly_totals as (
    select account, sum(talk_seconds) as talk_seconds, sum(call_attempts) as call_attempts
    from agg_traffic_hourly
    group by account
),

days as (
    select
        account,
        call_date,
        count(case when is_busy_hour then 1 end) as busy_hours,
        sum(talk_seconds) as talk_seconds
    from agg_traffic_hourly
    group by account, call_date
),

gaps as (
    select
        account,
        hour_start_epoch,
        hour_start_epoch - lag(hour_start_epoch) over (
            partition by account order by hour_start_epoch
        ) as step
    from agg_traffic_hourly
)

select
    coalesce(call_totals.account, hourly_totals.account) as account,
    'talk or attempts do not add up' as problem,
    cast(null as date) as call_date
from call_totals
full outer join hourly_totals on hourly_totals.account = call_totals.account
where
    call_totals.account is null
    or hourly_totals.account is null
    or coalesce(call_totals.talk_seconds, 0) <> coalesce(hourly_totals.talk_seconds, 0)
    or call_totals.calls <> hourly_totals.call_attempts
union all
select account, 'not exactly one busy hour', call_date
from days
where (talk_seconds > 0 and busy_hours <> 1) or (talk_seconds = 0 and busy_hours <> 0)
union all
select account, 'hours not consecutive', cast(null as date)
from gaps
where step is not null and step <> 3600
