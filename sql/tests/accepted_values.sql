-- test: categorical columns only hold their documented values
select 'stg_voipstudio__cdrs.direction' as column_name, direction as bad_value, count(*) as rows_
from stg_voipstudio__cdrs
where direction not in ('inbound', 'outbound', 'missed', 'internal', 'unknown')
group by direction
union all
select 'fct_calls.direction', direction, count(*)
from fct_calls
where direction not in ('inbound', 'outbound', 'internal', 'unknown')
group by direction
union all
select 'fct_calls.outcome', outcome, count(*)
from fct_calls
where outcome not in ('answered', 'no_answer', 'busy', 'failed', 'other')
group by outcome
union all
select 'fct_missed_call_callbacks.callback_type', callback_type, count(*)
from fct_missed_call_callbacks
where callback_type not in ('callback', 'retry')
group by callback_type
union all
select 'agg_traffic_hourly.hour_of_day', cast(hour_of_day as varchar), count(*)
from agg_traffic_hourly
where hour_of_day < 0 or hour_of_day > 23
group by hour_of_day
