-- The most calls of the accounts in progress at one instant of each hour, as agg_traffic_hourly
-- counts them for one account: a call is in progress from start_epoch to end_epoch (half-open:
-- ends sort before starts at the same second); an hour's peak is the most in progress right
-- after a call starts in it, or at its start. Only calls overlapping the period's hours matter:
-- the others add as many ends as starts before them, or come after them.
with hours as (
    select distinct hour_start_epoch
    from {ds}.agg_traffic_hourly
    where account in ({accounts}) and call_date between $start and $end
),
bounds as (
    select min(hour_start_epoch) as first_epoch, max(hour_start_epoch) + 3600 as last_epoch
    from hours
),
calls as (
    select calls.start_epoch, calls.end_epoch
    from {ds}.fct_calls as calls
    cross join bounds
    where calls.account in ({accounts})
        and calls.end_epoch > calls.start_epoch
        and calls.end_epoch > bounds.first_epoch
        and calls.start_epoch < bounds.last_epoch
),
events as (
    select start_epoch as event_epoch, 1 as delta from calls
    union all
    select end_epoch as event_epoch, -1 as delta from calls
),
running as (
    select
        event_epoch,
        delta,
        sum(delta) over (
            order by event_epoch, delta rows between unbounded preceding and current row
        ) as in_progress
    from events
),
at_starts as (
    select
        bounds.first_epoch
            + 3600 * cast(floor((running.event_epoch - bounds.first_epoch) / 3600) as bigint)
            as hour_start_epoch,
        max(running.in_progress) as peak
    from running
    cross join bounds
    where running.delta = 1
    group by 1
),
carried_in as (
    select hours.hour_start_epoch, count(*) as in_progress
    from hours
    inner join calls
        on calls.start_epoch < hours.hour_start_epoch and calls.end_epoch > hours.hour_start_epoch
    group by hours.hour_start_epoch
)
select
    hours.hour_start_epoch,
    greatest(coalesce(at_starts.peak, 0), coalesce(carried_in.in_progress, 0))
from hours
left join at_starts on at_starts.hour_start_epoch = hours.hour_start_epoch
left join carried_in on carried_in.hour_start_epoch = hours.hour_start_epoch
