-- test: every CDR lands in exactly one call of its own account, and the calls hold no leg that
-- is not a CDR
with legs as (
    select account, call_key, count(*) as legs
    from stg_voipstudio__cdrs
    group by account, call_key
)

select
    coalesce(legs.account, fct_calls.account) as account,
    coalesce(legs.call_key, fct_calls.call_key) as call_key,
    legs.legs as cdr_legs,
    fct_calls.leg_count as call_leg_count
from legs
full outer join fct_calls
    on fct_calls.account = legs.account and fct_calls.call_key = legs.call_key
where legs.call_key is null or fct_calls.call_key is null or legs.legs <> fct_calls.leg_count
