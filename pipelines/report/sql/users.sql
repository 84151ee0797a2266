-- A user is an (account, user_id): user ids repeat across accounts.
select
    account, user_id, max(user_name), max(extension),
    sum(handled_calls), sum(inbound_handled_calls), sum(outbound_calls),
    sum(outbound_answered_calls), sum(internal_calls), sum(missed_calls),
    sum(missed_unanswered_calls), sum(talk_seconds), sum(answered_ring_seconds),
    sum(inbound_answered_legs), sum(callbacks_made)
from {ds}.agg_user_daily
where account in ({accounts}) and call_date between $start and $end
group by account, user_id
order by sum(handled_calls) desc, sum(talk_seconds) desc, account, user_id
