-- Outbound attempts by destination over the period, from the calls (agg_destination_monthly is
-- monthly and cannot be cut to an arbitrary period). As in that mart, cost stays with the leg
-- that was charged: the outbound legs that forwarded an inbound call to a mobile are an outbound
-- attempt to their own destination (fct_calls.forward_*).
with outbound as (
    select destination, is_answered, own_talk_seconds as talk_seconds, cost
    from {ds}.fct_calls
    where account in ({accounts}) and direction = 'outbound' and call_date between $start and $end
    union all
    select forward_destination, is_forward_answered, forward_talk_seconds, forward_cost
    from {ds}.fct_calls
    where account in ({accounts}) and forward_leg_count > 0 and call_date between $start and $end
)
select
    coalesce(destination, 'unknown') as destination,
    count(*),
    count(case when is_answered then 1 end),
    coalesce(sum(talk_seconds), 0),
    coalesce(cast(sum(cost) as double), 0) as cost
from outbound
group by coalesce(destination, 'unknown')
order by cost desc, destination
limit $limit
