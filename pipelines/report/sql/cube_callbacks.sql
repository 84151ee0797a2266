-- The missed calls of the accounts in the window (fct_missed_call_callbacks, whose columns the
-- registry's callback metrics read) with the queue the missed call entered first.
select missed.*, coalesce(calls.queue_name, '') as queue_name
from {ds}.fct_missed_call_callbacks as missed
left join {ds}.fct_calls as calls
    on calls.account = missed.account and calls.call_key = missed.missed_call_key
where missed.account in ({accounts}) and missed.missed_date between $start and $end
