-- The time-consistent busy hour of each account and month the period touches, as
-- agg_busy_hour_monthly computes it (over the month's complete business days, on carried
-- traffic). The busy hour of several accounts together is not a sum of theirs: each is shown.
select
    account, month, days_counted, tcbh_start_local, tcbh_erlangs, adph_erlangs,
    tcbh_call_attempts
from {ds}.agg_busy_hour_monthly
where
    account in ({accounts})
    and days_counted > 0
    and month between cast(date_trunc('month', cast($start as date)) as date) and $end
order by month, account
