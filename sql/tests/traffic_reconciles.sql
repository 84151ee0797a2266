-- test: agg_traffic_hourly splits every talked and every held second of an account's legs into
-- exactly one of the account's hours (and its quarters) and counts each of its call attempts
-- once; each account's day with traffic has exactly one busy hour; each account's hours are
-- consecutive
with call_totals as (
    select account, sum(leg_talk_seconds) as talk_seconds, count(*) as calls
    from fct_calls
    group by account
),

leg_totals as (
    select account, sum(end_epoch - start_epoch) as holding_seconds
    from stg_voipstudio__cdrs
    group by account
),

hourly_totals as (
    select
        account,
        sum(talk_seconds) as talk_seconds,
        sum(call_attempts) as call_attempts,
        sum(holding_seconds) as holding_seconds,
        sum(holding_seconds_00 + holding_seconds_15 + holding_seconds_30 + holding_seconds_45)
            as quarter_holding_seconds,
        sum(call_attempts_00 + call_attempts_15 + call_attempts_30 + call_attempts_45)
            as quarter_call_attempts
    from agg_traffic_hourly
    group by account
),

days as (
    select
        account,
        call_date,
        count(case when is_busy_hour then 1 end) as busy_hours,
        sum(holding_seconds) as holding_seconds
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
left join leg_totals on leg_totals.account = call_totals.account
where
    call_totals.account is null
    or hourly_totals.account is null
    or coalesce(call_totals.talk_seconds, 0) <> coalesce(hourly_totals.talk_seconds, 0)
    or call_totals.calls <> hourly_totals.call_attempts
    or coalesce(leg_totals.holding_seconds, 0) <> coalesce(hourly_totals.holding_seconds, 0)
    or hourly_totals.quarter_holding_seconds <> hourly_totals.holding_seconds
    or hourly_totals.quarter_call_attempts <> hourly_totals.call_attempts
union all
select account, 'not exactly one busy hour', call_date
from days
where (holding_seconds > 0 and busy_hours <> 1) or (holding_seconds = 0 and busy_hours <> 0)
union all
select account, 'hours not consecutive', cast(null as date)
from gaps
where step is not null and step <> 3600
