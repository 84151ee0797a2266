-- test: every model's key is unique (rows: model, key, how many times it occurs). Ids are only
-- unique within an account, so every key starts with the account.
select
    'stg_voipstudio__cdrs' as model,
    account || ' ' || cast(cdr_id as varchar) as key_value,
    count(*) as occurrences
from stg_voipstudio__cdrs group by account, cdr_id having count(*) > 1
union all
select 'fct_calls', account || ' ' || cast(call_key as varchar), count(*)
from fct_calls group by account, call_key having count(*) > 1
union all
select
    'agg_calls_daily',
    account || ' ' || cast(call_date as varchar) || ' ' || direction,
    count(*)
from agg_calls_daily group by account, call_date, direction having count(*) > 1
union all
select 'agg_traffic_hourly', account || ' ' || cast(hour_start_utc as varchar), count(*)
from agg_traffic_hourly group by account, hour_start_utc having count(*) > 1
union all
select
    'agg_user_daily',
    account || ' ' || cast(call_date as varchar) || ' ' || cast(user_id as varchar),
    count(*)
from agg_user_daily group by account, call_date, user_id having count(*) > 1
union all
select
    'agg_destination_monthly',
    account || ' ' || cast(month_start as varchar) || ' ' || direction || ' ' || destination,
    count(*)
from agg_destination_monthly
group by account, month_start, direction, destination
having count(*) > 1
union all
select 'fct_missed_call_callbacks', account || ' ' || cast(missed_call_key as varchar), count(*)
from fct_missed_call_callbacks group by account, missed_call_key having count(*) > 1
union all
select 'rpt_repeat_callers', account || ' ' || caller_number, count(*)
from rpt_repeat_callers group by account, caller_number having count(*) > 1
union all
select 'fct_inbound_calls', account || ' ' || cast(call_key as varchar), count(*)
from fct_inbound_calls group by account, call_key having count(*) > 1
union all
select 'dim_accounts', account, count(*)
from dim_accounts group by account having count(*) > 1
