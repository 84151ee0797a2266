-- test: the grain, partition and flag columns that are not part of a key are never null (rows:
-- model, columns, rows with a null). The keys themselves are checked by the generated
-- not_null_keys test (pipelines/models/key_tests.py, from each model's key: line).
select
    'stg_voipstudio__cdrs' as model,
    'call_key, start_epoch, local_date' as columns_checked,
    count(*) as null_rows
from stg_voipstudio__cdrs
where call_key is null or start_epoch is null or local_date is null
having count(*) > 0
union all
select 'fct_calls', 'call_date, direction, outcome, flags, seconds, cost', count(*)
from fct_calls
where
    call_date is null or direction is null or outcome is null
    or is_answered is null or is_missed is null or is_abandoned is null
    or is_short_abandon is null or is_offered is null or is_answered_within_sl is null
    or is_rejected is null or is_network_effective is null
    or talk_seconds is null or wait_seconds is null or cost is null or forward_cost is null
having count(*) > 0
union all
select 'agg_calls_daily', 'is_complete', count(*)
from agg_calls_daily
where is_complete is null
having count(*) > 0
union all
select 'agg_traffic_hourly', 'call_date, hour_of_day, is_complete', count(*)
from agg_traffic_hourly
where call_date is null or hour_of_day is null or is_complete is null
having count(*) > 0
union all
select 'fct_missed_call_callbacks', 'external_number, missed_ended_date, windows', count(*)
from fct_missed_call_callbacks
where
    external_number is null or missed_ended_date is null
    or callback_window_closed_1h is null or callback_window_closed_4h is null
    or callback_window_closed_24h is null
having count(*) > 0
union all
select 'fct_inbound_calls', 'call_date, caller_number, is_repeat', count(*)
from fct_inbound_calls
where call_date is null or caller_number is null or is_repeat is null
having count(*) > 0
union all
select 'dim_accounts', 'data_horizon_epoch, first_hour_epoch, complete_before_epoch', count(*)
from dim_accounts
where data_horizon_epoch is null or first_hour_epoch is null or complete_before_epoch is null
having count(*) > 0
