-- No callback: no contact between the account and the number within 24 hours of the missed call
-- (up to the account's newest call loaded, dim_accounts.data_horizon_epoch). One row per account
-- and number, the most recent miss first.
select
    missed.account,
    missed.external_number,
    count(*) as missed_calls,
    min(missed.missed_at_local),
    max(missed.missed_at_local) as last_missed_at,
    greatest(max(accounts.data_horizon_epoch) - max(epoch(missed.missed_ended_at_utc)), 0),
    bool_or(missed.is_business_hours)
from {ds}.fct_missed_call_callbacks as missed
inner join {ds}.dim_accounts as accounts on accounts.account = missed.account
where missed.account in ({accounts}) and missed.callback_call_key is null
    and missed.missed_date between $start and $end
group by missed.account, missed.external_number
order by last_missed_at desc, missed.account, missed.external_number
