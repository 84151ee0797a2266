-- grain: one row per account and clock hour of the reporting time zone, from the hour in which
-- the account's first call starts to the hour in which its last call ends (hours without calls
-- included); key: (account, hour_start_utc)
-- incremental: partition (account, call_date)
--   fct_calls, stg_voipstudio__cdrs: call_date covers days of [start_epoch, end_epoch)
--   dim_accounts: call_date covers days between old and new first_hour_epoch, last_activity_epoch
--
-- Rebuilt day by day: the days a changed call or CDR was in progress on (before and after the
-- change), and the days an account's first or last hour moved over.
--
-- Every figure is the account's own. Across accounts: talk_seconds, carried_erlangs and
-- call_attempts add up (sum them per hour_start_utc); peak_concurrent_calls and is_busy_hour do
-- not (the sum of the accounts' peaks is only an upper bound of the peak of their sum, and the
-- busy hour of the sum is the hour with the most summed talk).
--
-- Hours are real hours of the reporting time zone: a day has 23 of them when the clocks go
-- forward and 25 when they go back (two rows then share hour_of_day; hour_start_utc tells them
-- apart). A call is split over the hours it actually covers, also across midnight.
--
--   call_attempts          calls that started in the hour (busy-hour call attempts, BHCA, are
--                          call_attempts of the day's row with is_busy_hour)
--   talk_seconds           seconds of talk inside the hour: every leg's talk interval
--                          [start + ring_seconds, start + ring_seconds + billsec) cut to the hour
--   carried_erlangs        carried traffic = talk_seconds / 3600 (average number of calls in
--                          conversation during the hour)
--   peak_concurrent_calls  the most calls in progress at the same instant during the hour; a
--                          call is in progress from its first leg's start to its last leg's end
--                          (ringing included, any direction); a call ending at the instant
--                          another starts does not overlap it
--   is_busy_hour           the hour of the account's day (call_date) with the most talk_seconds
--                          (the earliest on a tie); no busy hour on a day without talk
with calls as (
    select account, start_epoch, end_epoch from fct_calls
),

talk as (
    select
        account,
        start_epoch + ring_seconds as talk_start_epoch,
        start_epoch + ring_seconds + talk_seconds as talk_end_epoch
    from stg_voipstudio__cdrs
    where talk_seconds > 0
),

accounts as (
    select account, first_hour_epoch, last_activity_epoch from dim_accounts
),

bounds as (
    -- Hours start where the reporting time zone's clock shows minute 0, second 0: the same
    -- instants for every account, so one origin (the first hour of any account) numbers the
    -- hours of all of them.
    select min(first_hour_epoch) as first_hour_epoch from accounts
),

digits as (
    select d from (values (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) as t (d)
),

numbers as (
    -- 0 .. 999999: enough hours for 114 years of data
    select
        cast(d1.d + 10 * d2.d + 100 * d3.d + 1000 * d4.d + 10000 * d5.d + 100000 * d6.d as bigint)
            as n
    from digits as d1
    cross join digits as d2
    cross join digits as d3
    cross join digits as d4
    cross join digits as d5
    cross join digits as d6
),

call_hours as (
    -- the hour a call starts in, and the hour holding its last second (hour_index counts hours
    -- from the origin)
    select
        calls.account,
        cast(floor((calls.start_epoch - bounds.first_hour_epoch) / 3600.0) as bigint)
            as start_index,
        cast(floor((calls.end_epoch - 1 - bounds.first_hour_epoch) / 3600.0) as bigint)
            as last_index,
        calls.end_epoch > calls.start_epoch as has_duration
    from calls
    cross join bounds
),

account_bounds as (
    -- each account's first hour (its first call's) and last (the one holding the last second
    -- of its calls; the start of a call without duration)
    select
        accounts.account,
        cast(floor((accounts.first_hour_epoch - bounds.first_hour_epoch) / 3600.0) as bigint)
            as first_index,
        cast(floor((accounts.last_activity_epoch - bounds.first_hour_epoch) / 3600.0) as bigint)
            as last_index
    from accounts
    cross join bounds
),

hours as (
    select
        account_bounds.account,
        account_bounds.first_index + numbers.n as hour_index,
        bounds.first_hour_epoch + 3600 * (account_bounds.first_index + numbers.n)
            as hour_start_epoch
    from account_bounds
    inner join numbers on numbers.n <= account_bounds.last_index - account_bounds.first_index
    cross join bounds
),

span_numbers as (
    -- 0 .. the most hours a call spans: few, so expanding calls into hours stays cheap
    select n
    from numbers
    where n <= (select max(last_index - start_index) from call_hours)
),

talk_hours as (
    select
        talk.account,
        talk.talk_start_epoch,
        talk.talk_end_epoch,
        cast(floor((talk.talk_start_epoch - bounds.first_hour_epoch) / 3600.0) as bigint)
            as start_index,
        cast(floor((talk.talk_end_epoch - 1 - bounds.first_hour_epoch) / 3600.0) as bigint)
            as last_index
    from talk
    cross join bounds
),

hourly_talk as (
    -- each talk interval, once per hour it touches, cut to that hour
    select
        talk_hours.account,
        talk_hours.start_index + numbers.n as hour_index,
        sum(
            least(
                talk_hours.talk_end_epoch,
                bounds.first_hour_epoch + 3600 * (talk_hours.start_index + numbers.n + 1)
            )
            - greatest(
                talk_hours.talk_start_epoch,
                bounds.first_hour_epoch + 3600 * (talk_hours.start_index + numbers.n)
            )
        ) as talk_seconds
    from talk_hours
    inner join span_numbers as numbers
        on numbers.n <= talk_hours.last_index - talk_hours.start_index
    cross join bounds
    group by talk_hours.account, talk_hours.start_index + numbers.n
),

hourly_attempts as (
    select
        account,
        start_index as hour_index,
        count(*) as call_attempts
    from call_hours
    group by account, start_index
),

events as (
    select account, start_epoch as event_epoch, 1 as delta
    from calls where end_epoch > start_epoch
    union all
    select account, end_epoch as event_epoch, -1 as delta
    from calls where end_epoch > start_epoch
),

running as (
    -- Calls in progress in the account. Ends sort before starts at the same second: intervals
    -- are half-open. (The keys are never null; "nulls first" is spelled out so every dialect
    -- orders the frame the same way.)
    select
        account,
        event_epoch,
        delta,
        sum(delta) over (
            partition by account
            order by event_epoch nulls first, delta nulls first
            rows between unbounded preceding and current row
        ) as in_progress
    from events
),

hourly_peak_at_starts as (
    -- the most calls in progress right after a call starts in the hour
    select
        running.account,
        cast(floor((running.event_epoch - bounds.first_hour_epoch) / 3600.0) as bigint)
            as hour_index,
        max(running.in_progress) as peak_at_starts
    from running
    cross join bounds
    where running.delta = 1
    group by
        running.account,
        cast(floor((running.event_epoch - bounds.first_hour_epoch) / 3600.0) as bigint)
),

carried_in as (
    -- calls already in progress when the hour begins: every hour after the one a call starts
    -- in, up to the one holding its last second
    select
        call_hours.account,
        call_hours.start_index + numbers.n as hour_index,
        count(*) as in_progress_at_start
    from call_hours
    inner join span_numbers as numbers
        on numbers.n >= 1 and numbers.n <= call_hours.last_index - call_hours.start_index
    where call_hours.has_duration
    group by call_hours.account, call_hours.start_index + numbers.n
),

joined as (
    select
        hours.account,
        hours.hour_start_epoch,
        to_timestamp(hours.hour_start_epoch) at time zone 'UTC' as hour_start_utc,
        to_timestamp(hours.hour_start_epoch) at time zone {{ reporting_timezone }}
            as hour_start_local,
        coalesce(hourly_attempts.call_attempts, 0) as call_attempts,
        coalesce(hourly_talk.talk_seconds, 0) as talk_seconds,
        cast(
            greatest(
                coalesce(hourly_peak_at_starts.peak_at_starts, 0),
                coalesce(carried_in.in_progress_at_start, 0)
            ) as bigint
        ) as peak_concurrent_calls
    from hours
    left join hourly_talk
        on hourly_talk.account = hours.account and hourly_talk.hour_index = hours.hour_index
    left join hourly_attempts
        on hourly_attempts.account = hours.account
        and hourly_attempts.hour_index = hours.hour_index
    left join hourly_peak_at_starts
        on hourly_peak_at_starts.account = hours.account
        and hourly_peak_at_starts.hour_index = hours.hour_index
    left join carried_in
        on carried_in.account = hours.account and carried_in.hour_index = hours.hour_index
),

ranked as (
    select
        joined.*,
        cast(hour_start_local as date) as call_date,
        cast(extract(hour from hour_start_local) as integer) as hour_of_day,
        row_number() over (
            partition by account, cast(hour_start_local as date)
            order by talk_seconds desc, hour_start_epoch
        ) as traffic_rank
    from joined
),

final as (
    select
        account,
        hour_start_utc,
        hour_start_local,
        call_date,
        hour_of_day,
        hour_start_epoch,
        call_attempts,
        cast(talk_seconds as bigint) as talk_seconds,
        cast(talk_seconds as double) / 3600 as carried_erlangs,
        peak_concurrent_calls,
        traffic_rank = 1 and talk_seconds > 0 as is_busy_hour
    from ranked
)

select * from final
