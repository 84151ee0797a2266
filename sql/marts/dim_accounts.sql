-- grain: one row per account with at least one call; key: (account)
--
-- How far each account's loaded calls reach: the models judge "too recent", "window still
-- open" and the hours to show against these, the account's own high-water mark, never against
-- the wall clock, so that building again from the same data gives the same rows. A table built
-- in full when fct_calls changed: one row per account, it costs a scan of fct_calls' times.
--
--   call_count             calls of the account
--   first_call_epoch       start of its earliest call (Unix seconds)
--   first_hour_epoch       start of the reporting time zone's clock hour holding it
--   data_horizon_epoch     start of its newest call: what has been loaded of the account reaches
--                          up to here (callbacks and repeat windows are judged against it)
--   data_horizon_utc       the same as a UTC timestamp
--   last_activity_epoch    the last second in which one of its calls was in progress (the start
--                          of a call without duration)
--   first_call_date        the reporting time zone's date of first_call_epoch: the first day
--                          loaded, partial (the data may start after its midnight)
--   complete_before_epoch  data_horizon_epoch - the sync's lag ({{ lag_seconds }} s): periods
--                          that end by then are complete (no late CDR is expected for them);
--                          complete_before_date: its date in the reporting time zone (the days
--                          before it are complete)
with calls as (
    select account, start_epoch, end_epoch, started_at_local from fct_calls
),

per_account as (
    select
        account,
        count(*) as call_count,
        min(start_epoch) as first_call_epoch,
        min(
            start_epoch - (
                extract(minute from started_at_local) * 60 + extract(second from started_at_local)
            )
        ) as first_hour_epoch,
        max(start_epoch) as data_horizon_epoch,
        max(case when end_epoch > start_epoch then end_epoch - 1 else start_epoch end)
            as last_activity_epoch
    from calls
    group by account
),

final as (
    select
        account,
        call_count,
        first_call_epoch,
        cast(first_hour_epoch as bigint) as first_hour_epoch,
        data_horizon_epoch,
        to_timestamp(data_horizon_epoch) at time zone 'UTC' as data_horizon_utc,
        last_activity_epoch,
        cast(to_timestamp(first_call_epoch) at time zone {{ reporting_timezone }} as date)
            as first_call_date,
        data_horizon_epoch - {{ lag_seconds }} as complete_before_epoch,
        cast(
            to_timestamp(data_horizon_epoch - {{ lag_seconds }}) at time zone {{ reporting_timezone }}
            as date
        ) as complete_before_date
    from per_account
)

select * from final
