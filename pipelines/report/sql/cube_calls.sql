-- The calls of the accounts in the window, one row per call, in agg_calls_daily's columns (the
-- same expressions, per call: the metric registry's numerators and denominators apply to it)
-- and with the dashboard's filter keys: the queue the call entered first (fct_calls.queue_name,
-- '' for a call through no queue) and its agent: the user who answered it (inbound, internal) or
-- placed it (outbound), null for a call nobody answered. The report groups it by day, hour of
-- the day and those keys; tests/report check that it adds up to agg_calls_daily.
select
    call_date,
    cast(hour(started_at_local) as integer) as hour_of_day,
    account,
    direction,
    coalesce(queue_name, '') as queue_name,
    coalesce(answering_user_id, calling_user_id) as agent_id,
    outcome,
    1 as attempts,
    case when is_answered then 1 else 0 end as answered_calls,
    case when is_network_effective then 1 else 0 end as effective_calls,
    case when is_rejected then 1 else 0 end as rejected_calls,
    talk_seconds,
    case when is_answered then wait_seconds else 0 end as answered_wait_seconds,
    cost,
    forward_cost,
    case when is_offered then 1 else 0 end - case when is_short_abandon then 1 else 0 end
        as offered_calls_excl_short,
    case when is_abandoned then 1 else 0 end - case when is_short_abandon then 1 else 0 end
        as abandoned_calls_excl_short,
    case when is_answered_within_sl then 1 else 0 end as answered_within_sl_calls,
    case
        when direction = 'inbound' and (
            is_answered or (is_abandoned and wait_seconds > $sl_seconds)
        ) then 1 else 0
    end as answered_or_abandoned_after_sl_calls
from {ds}.fct_calls
where account in ({accounts}) and call_date between $start and $end
