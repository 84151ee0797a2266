-- The length of the queue intervals the marts were built with.
select max(interval_minutes) from {ds}.agg_queue_interval
