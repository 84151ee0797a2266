-- test: agg_calls_daily adds up to fct_calls, per account, day and direction (attempts,
-- answered, talk, wait, cost, inbound counts)
with from_calls as (
    select
        account,
        call_date,
        direction,
        count(*) as attempts,
        count(case when is_answered then 1 end) as answered_calls,
        sum(talk_seconds) as talk_seconds,
        sum(case when is_answered then wait_seconds else 0 end) as answered_wait_seconds,
        sum(cost) as cost,
        count(case when is_abandoned then 1 end) as abandoned_calls,
        count(case when is_answered_within_sl then 1 end) as answered_within_sl_calls
    from fct_calls
    group by account, call_date, direction
)

select
    coalesce(daily.account, from_calls.account) as account,
    coalesce(daily.call_date, from_calls.call_date) as call_date,
    coalesce(daily.direction, from_calls.direction) as direction,
    daily.attempts as daily_attempts,
    from_calls.attempts as call_attempts
from agg_calls_daily as daily
full outer join from_calls
    on from_calls.account = daily.account
    and from_calls.call_date = daily.call_date
    and from_calls.direction = daily.direction
where
    daily.call_date is null
    or from_calls.call_date is null
    or daily.attempts <> from_calls.attempts
    or daily.answered_calls <> from_calls.answered_calls
    or daily.talk_seconds <> from_calls.talk_seconds
    or daily.answered_wait_seconds <> from_calls.answered_wait_seconds
    or abs(daily.cost - from_calls.cost) > 0.000001
    or daily.abandoned_calls <> from_calls.abandoned_calls
    or daily.answered_within_sl_calls <> from_calls.answered_within_sl_calls
    or daily.offered_calls_excl_short <> daily.offered_calls - daily.short_abandoned_calls
