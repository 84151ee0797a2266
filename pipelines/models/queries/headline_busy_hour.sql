-- Each chosen account's time-consistent busy hour of its latest month with a complete business
-- day (agg_busy_hour_monthly computes it; the busy hour of several accounts together is not a
-- sum of theirs, so each is shown).
select account, month, days_counted, tcbh_start_local, tcbh_erlangs, adph_erlangs,
    tcbh_call_attempts
from (
    select
        busy.*,
        row_number() over (partition by account order by month desc) as recency
    from voipstudio.agg_busy_hour_monthly as busy
    where {accounts} and days_counted > 0
) as latest
where recency = 1
order by account
