-- test: key and grain columns, account included, are never null (rows: model, column, rows
-- with a null)
select
    'stg_voipstudio__cdrs' as model,
    'account, cdr_id, call_key, start_epoch, local_date' as key_columns,
    count(*) as null_rows
from stg_voipstudio__cdrs
where
    account is null or cdr_id is null or call_key is null or start_epoch is null
    or local_date is null
having count(*) > 0
union all
select 'fct_calls', 'account, call_key, call_date, direction, outcome, flags', count(*)
from fct_calls
where
    account is null or call_key is null or call_date is null or direction is null
    or outcome is null
    or is_answered is null or is_missed is null or is_abandoned is null
    or is_short_abandon is null or is_offered is null or is_answered_within_sl is null
    or talk_seconds is null or wait_seconds is null or cost is null
having count(*) > 0
union all
select 'agg_calls_daily', 'account, call_date, direction', count(*)
from agg_calls_daily
where account is null or call_date is null or direction is null
having count(*) > 0
union all
select 'agg_traffic_hourly', 'account, hour_start_utc, call_date, hour_of_day', count(*)
from agg_traffic_hourly
where account is null or hour_start_utc is null or call_date is null or hour_of_day is null
having count(*) > 0
union all
select 'agg_user_daily', 'account, call_date, user_id', count(*)
from agg_user_daily
where account is null or call_date is null or user_id is null
having count(*) > 0
union all
select 'agg_destination_monthly', 'account, month_start, direction, destination', count(*)
from agg_destination_monthly
where account is null or month_start is null or direction is null or destination is null
having count(*) > 0
union all
select
    'fct_missed_call_callbacks',
    'account, missed_call_key, external_number, missed_ended_date',
    count(*)
from fct_missed_call_callbacks
where
    account is null or missed_call_key is null or external_number is null
    or missed_ended_date is null
having count(*) > 0
union all
select 'rpt_repeat_callers', 'account, caller_number', count(*)
from rpt_repeat_callers
where account is null or caller_number is null
having count(*) > 0
union all
select 'fct_inbound_calls', 'account, call_key, call_date, caller_number, is_repeat', count(*)
from fct_inbound_calls
where
    account is null or call_key is null or call_date is null or caller_number is null
    or is_repeat is null
having count(*) > 0
union all
select 'dim_accounts', 'account, data_horizon_epoch, first_hour_epoch', count(*)
from dim_accounts
where account is null or data_horizon_epoch is null or first_hour_epoch is null
having count(*) > 0
