-- test: every model's key is unique (rows: model, key, how many times it occurs)
select
    'stg_voipstudio__cdrs' as model,
    cast(cdr_id as varchar) as key_value,
    count(*) as occurrences
from stg_voipstudio__cdrs group by cdr_id having count(*) > 1
union all
select 'fct_calls', cast(call_key as varchar), count(*)
from fct_calls group by call_key having count(*) > 1
union all
select 'agg_calls_daily', cast(call_date as varchar) || ' ' || direction, count(*)
from agg_calls_daily group by call_date, direction having count(*) > 1
union all
select 'agg_traffic_hourly', cast(hour_start_utc as varchar), count(*)
from agg_traffic_hourly group by hour_start_utc having count(*) > 1
union all
select 'agg_user_daily', cast(call_date as varchar) || ' ' || cast(user_id as varchar), count(*)
from agg_user_daily group by call_date, user_id having count(*) > 1
union all
select
    'agg_destination_monthly',
    cast(month_start as varchar) || ' ' || direction || ' ' || destination,
    count(*)
from agg_destination_monthly group by month_start, direction, destination having count(*) > 1
union all
select 'fct_missed_call_callbacks', cast(missed_call_key as varchar), count(*)
from fct_missed_call_callbacks group by missed_call_key having count(*) > 1
union all
select 'rpt_repeat_callers', caller_number, count(*)
from rpt_repeat_callers group by caller_number having count(*) > 1
