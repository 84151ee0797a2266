-- Days of the period the marts do not hold in full yet: the first day loaded (the data may start
-- after its midnight) and the days still inside the sync's lag (late CDRs may still arrive).
select min(call_date), max(call_date), count(distinct call_date)
from {ds}.agg_calls_daily
where account in ({accounts}) and call_date between $start and $end and not is_complete
