-- The same in every row (of every account): the threshold the marts were built with (known
-- without calls too).
select max(service_level_seconds) from {ds}.agg_calls_daily
