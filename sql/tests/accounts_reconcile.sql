-- test: the marts hold exactly the accounts of the loaded CDRs. Every account with a CDR has
-- calls, daily, hourly and monthly rows; no mart holds an account without CDRs (a join that
-- mixed accounts up would show here before it skews a figure)
with cdr_accounts as (
    select distinct account from stg_voipstudio__cdrs
),

expected as (
    -- the marts with a row for every account that has a call
    select models.model, cdr_accounts.account
    from cdr_accounts
    cross join (
        values
        ('fct_calls'),
        ('agg_calls_daily'),
        ('agg_traffic_hourly'),
        ('agg_destination_monthly')
    ) as models (model)
),

mart_accounts as (
    select distinct 'fct_calls' as model, account from fct_calls
    union all
    select distinct 'agg_calls_daily' as model, account from agg_calls_daily
    union all
    select distinct 'agg_traffic_hourly' as model, account from agg_traffic_hourly
    union all
    select distinct 'agg_destination_monthly' as model, account from agg_destination_monthly
    union all
    -- these two only have rows for some accounts (missed calls with a number, repeat callers)
    select distinct 'fct_missed_call_callbacks' as model, account from fct_missed_call_callbacks
    union all
    select distinct 'rpt_repeat_callers' as model, account from rpt_repeat_callers
)

select
    coalesce(expected.model, mart_accounts.model) as model,
    coalesce(expected.account, mart_accounts.account) as account,
    case
        when mart_accounts.model is null then 'account with CDRs missing from the model'
        else 'account without CDRs'
    end as problem
from expected
full outer join mart_accounts
    on mart_accounts.model = expected.model and mart_accounts.account = expected.account
where
    mart_accounts.model is null
    or (
        expected.model is null
        and (
            mart_accounts.account is null
            or mart_accounts.account not in (select account from cdr_accounts)
        )
    )
