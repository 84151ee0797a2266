-- Missed calls of the accounts in the window not called back (no contact between the account and
-- the number within 24 hours of the missed call, up to the account's newest call loaded:
-- dim_accounts.data_horizon_epoch), one row each, with the queue the call entered first and the
-- account's data horizon: the page groups them by number over the chosen filters.
select
    missed.missed_date,
    missed.account,
    missed.external_number,
    coalesce(calls.queue_name, '') as queue_name,
    strftime(missed.missed_at_local, '%Y-%m-%dT%H:%M'),
    cast(epoch(missed.missed_ended_at_utc) as bigint),
    missed.is_business_hours,
    accounts.data_horizon_epoch
from {ds}.fct_missed_call_callbacks as missed
inner join {ds}.dim_accounts as accounts on accounts.account = missed.account
left join {ds}.fct_calls as calls
    on calls.account = missed.account and calls.call_key = missed.missed_call_key
where missed.account in ({accounts}) and missed.callback_call_key is null
    and missed.missed_date between $start and $end
order by missed.missed_at_local desc
