-- Outbound attempts of the accounts per day, agent (the user who placed the call) and
-- destination; a forwarded call's outbound leg counts under its own destination, with its own
-- talk and charge (as agg_destination_monthly counts them).
with outbound as (
    select call_date, account, calling_user_id as agent_id, destination, is_answered,
        own_talk_seconds as talk_seconds, cost
    from {ds}.fct_calls
    where account in ({accounts}) and direction = 'outbound' and call_date between $start and $end
    union all
    select call_date, account, answering_user_id, forward_destination, is_forward_answered,
        forward_talk_seconds, forward_cost
    from {ds}.fct_calls
    where account in ({accounts}) and forward_leg_count > 0 and call_date between $start and $end
)
select
    call_date,
    account,
    agent_id,
    coalesce(destination, 'unknown') as destination,
    count(*),
    count(case when is_answered then 1 end),
    coalesce(sum(talk_seconds), 0),
    coalesce(cast(sum(cost) as double), 0)
from outbound
group by 1, 2, 3, 4
