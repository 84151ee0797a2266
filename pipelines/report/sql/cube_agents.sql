-- The agents' days (agg_agent_daily: one row per account, day, user and queue or none) with
-- the user's name and extension (agg_user_daily), summed by the page over the filters.
select
    agents.call_date, agents.account, agents.user_id, agents.queue_key,
    agents.offered_calls, agents.answered_calls, agents.rona_calls,
    agents.answered_talk_seconds, agents.outbound_calls, agents.callbacks_made,
    agents.talk_seconds
from {ds}.agg_agent_daily as agents
where agents.account in ({accounts}) and agents.call_date between $start and $end
