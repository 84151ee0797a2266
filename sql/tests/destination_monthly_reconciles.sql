-- test: agg_destination_monthly adds up to fct_calls per account and month (attempts, answered,
-- talk, cost; a forwarded call's outbound legs are an attempt of their own)
with from_calls as (
    select
        account,
        cast(date_trunc('month', call_date) as date) as month_start,
        count(*) + count(case when forward_leg_count > 0 then 1 end) as attempts,
        count(case when is_answered then 1 end)
        + count(case when forward_leg_count > 0 and is_forward_answered then 1 end)
            as answered_calls,
        sum(own_talk_seconds + forward_talk_seconds) as talk_seconds,
        sum(cost + forward_cost) as cost
    from fct_calls
    group by account, cast(date_trunc('month', call_date) as date)
),

monthly as (
    select
        account,
        month_start,
        sum(attempts) as attempts,
        sum(answered_calls) as answered_calls,
        sum(talk_seconds) as talk_seconds,
        sum(cost) as cost
    from agg_destination_monthly
    group by account, month_start
)

select
    coalesce(monthly.account, from_calls.account) as account,
    coalesce(monthly.month_start, from_calls.month_start) as month_start,
    monthly.attempts as monthly_attempts,
    from_calls.attempts as call_attempts
from monthly
full outer join from_calls
    on from_calls.account = monthly.account and from_calls.month_start = monthly.month_start
where
    monthly.month_start is null
    or from_calls.month_start is null
    or monthly.attempts <> from_calls.attempts
    or monthly.answered_calls <> from_calls.answered_calls
    or monthly.talk_seconds <> from_calls.talk_seconds
    or abs(monthly.cost - from_calls.cost) > 0.000001
