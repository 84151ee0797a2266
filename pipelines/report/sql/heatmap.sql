-- Hours of the day are averaged over the hours agg_traffic_hourly holds (every hour from an
-- account's first call to its last), so a period that starts before the data does not dilute
-- them; an hour held by several accounts counts once.
select isodow(call_date), hour_of_day, sum(call_attempts), count(distinct hour_start_utc)
from {ds}.agg_traffic_hourly
where account in ({accounts}) and call_date between $start and $end
group by isodow(call_date), hour_of_day
order by 1, 2
