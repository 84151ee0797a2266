-- grain: one row per account and clock hour of the reporting time zone, from the hour in which
-- the account's first call starts to the hour in which its last call ends (hours without calls
-- included); key: (account, hour_start_utc)
-- incremental: partition (account, call_date)
--   fct_calls, stg_voipstudio__cdrs: call_date covers days of [start_epoch, end_epoch)
--   dim_accounts: call_date covers days between old and new first_hour_epoch, last_activity_epoch
--   dim_accounts: call_date covers days between old and new first_call_epoch, complete_before_epoch - 3600
--
-- Rebuilt day by day: the days a changed call or CDR was in progress on (before and after the
-- change), and the days an account's first or last hour, or the end of its complete hours,
-- moved over.
--
-- Traffic follows ITU-T E.600: traffic intensity (Erlangs) is the holding time of the channels
-- in the period / the period's length. A channel is held by a leg (CDR) from its start to its
-- end, ringing included: a call forwarded to a mobile holds two (its inbound and its outbound
-- leg), a ring-all queue one per phone ringing. Every figure counts legs, not calls, except
-- call_attempts and peak_concurrent_calls.
--
-- Every figure is the account's own. Across accounts: the seconds, Erlangs and call_attempts add
-- up (sum them per hour_start_utc); peak_concurrent_* and is_busy_hour do not (the sum of the
-- accounts' peaks is only an upper bound of the peak of their sum).
--
-- Hours are real hours of the reporting time zone: a day has 23 of them when the clocks go
-- forward and 25 when they go back (two rows then share hour_of_day; hour_start_utc tells them
-- apart). A leg is split over the seconds it actually covers in each hour, also across midnight.
--
--   call_attempts          calls that started in the hour
--   holding_seconds        seconds of the hour during which each leg was up (from its start to
--                          its end: ringing and talk), summed over the legs
--   carried_erlangs        carried traffic = holding_seconds / 3600: the average number of
--                          channels held during the hour (ITU-T E.600)
--   talk_seconds           seconds of talk inside the hour: every leg's talk interval
--                          [start + ring_seconds, start + ring_seconds + billsec) cut to the hour
--   talk_erlangs           talk_seconds / 3600: channels in conversation (ringing left out)
--   external_holding_seconds
--                          holding_seconds of the legs with an outside party (inbound, missed
--                          and outbound legs): the trunk's traffic; internal calls use no trunk.
--                          external_erlangs = external_holding_seconds / 3600
--   holding_seconds_00, _15, _30, _45
--                          holding_seconds of each quarter of the hour (minutes 0-15, 15-30,
--                          30-45, 45-60); call_attempts_00 .. _45 the same for call_attempts.
--                          agg_busy_hour_monthly slides its busy hour over them.
--   peak_concurrent_channels
--                          the most legs up at the same instant during the hour
--   peak_concurrent_calls  the most calls in progress at the same instant (a call from its first
--                          leg's start to its last leg's end, any direction); intervals are
--                          half-open: a call ending at the instant another starts does not
--                          overlap it
--   is_busy_hour           the hour of the account's day (call_date) with the most
--                          holding_seconds (the earliest on a tie); none on a day without traffic.
--                          The daily peak hour: the average over days of it is the ADPH of
--                          agg_busy_hour_monthly (which also has the time-consistent busy hour)
--   is_complete            the hour starts at or after the account's first loaded call and ends
--                          at least the sync's lag ({{ lag_seconds }} s) before its newest loaded
--                          call (dim_accounts.complete_before_epoch): no late CDR is expected
with calls as (
    select account, start_epoch, end_epoch from fct_calls
),

legs as (
    select
        account,
        start_epoch,
        end_epoch,
        start_epoch + ring_seconds as talk_start_epoch,
        start_epoch + ring_seconds + talk_seconds as talk_end_epoch,
        direction in ('inbound', 'missed', 'outbound') as is_external
    from stg_voipstudio__cdrs
    where end_epoch > start_epoch
),

accounts as (
    select
        account, first_call_epoch, first_hour_epoch, last_activity_epoch, complete_before_epoch
    from dim_accounts
),

bounds as (
    -- Hours start where the reporting time zone's clock shows minute 0, second 0: the same
    -- instants for every account, so one origin (the first hour of any account) numbers the
    -- hours of all of them. Quarters of an hour are 900 s from its start.
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
    -- from the origin); the quarter of its start (quarter_index counts quarters)
    select
        calls.account,
        cast(floor((calls.start_epoch - bounds.first_hour_epoch) / 3600.0) as bigint)
            as start_index,
        cast(floor((calls.end_epoch - 1 - bounds.first_hour_epoch) / 3600.0) as bigint)
            as last_index,
        cast(floor((calls.start_epoch - bounds.first_hour_epoch) / 900.0) as bigint)
            as start_quarter,
        calls.end_epoch > calls.start_epoch as has_duration
    from calls
    cross join bounds
),

account_bounds as (
    -- each account's first hour (its first call's) and last (the one holding the last second
    -- of its calls; the start of a call without duration)
    select
        accounts.account,
        accounts.first_call_epoch,
        accounts.complete_before_epoch,
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
        account_bounds.first_call_epoch,
        account_bounds.complete_before_epoch,
        account_bounds.first_index + numbers.n as hour_index,
        bounds.first_hour_epoch + 3600 * (account_bounds.first_index + numbers.n)
            as hour_start_epoch
    from account_bounds
    inner join numbers on numbers.n <= account_bounds.last_index - account_bounds.first_index
    cross join bounds
),

leg_quarters as (
    select
        legs.*,
        cast(floor((legs.start_epoch - bounds.first_hour_epoch) / 900.0) as bigint)
            as start_quarter,
        cast(floor((legs.end_epoch - 1 - bounds.first_hour_epoch) / 900.0) as bigint)
            as last_quarter
    from legs
    cross join bounds
),

span_numbers as (
    -- 0 .. the most quarters a leg or call spans: few, so expanding legs into quarters stays
    -- cheap
    select n
    from numbers
    where
        n <= (select max(last_quarter - start_quarter) from leg_quarters)
        or n <= (select max(last_index - start_index) from call_hours)
),

quarter_traffic as (
    -- each leg, once per quarter it touches, cut to that quarter
    select
        leg_quarters.account,
        leg_quarters.start_quarter + numbers.n as quarter_index,
        least(
            leg_quarters.end_epoch,
            bounds.first_hour_epoch + 900 * (leg_quarters.start_quarter + numbers.n + 1)
        )
        - greatest(
            leg_quarters.start_epoch,
            bounds.first_hour_epoch + 900 * (leg_quarters.start_quarter + numbers.n)
        ) as holding_seconds,
        greatest(
            least(
                leg_quarters.talk_end_epoch,
                bounds.first_hour_epoch + 900 * (leg_quarters.start_quarter + numbers.n + 1)
            )
            - greatest(
                leg_quarters.talk_start_epoch,
                bounds.first_hour_epoch + 900 * (leg_quarters.start_quarter + numbers.n)
            ),
            0
        ) as talk_seconds,
        leg_quarters.is_external
    from leg_quarters
    inner join span_numbers as numbers
        on numbers.n <= leg_quarters.last_quarter - leg_quarters.start_quarter
    cross join bounds
),

quarters as (
    -- quarter_index - 4 * hour_index is the quarter of the hour (0 .. 3)
    select
        account,
        cast(floor(quarter_index / 4.0) as bigint) as hour_index,
        quarter_index - 4 * cast(floor(quarter_index / 4.0) as bigint) as quarter_of_hour,
        sum(holding_seconds) as holding_seconds,
        sum(talk_seconds) as talk_seconds,
        sum(case when is_external then holding_seconds else 0 end) as external_holding_seconds,
        cast(0 as bigint) as call_attempts
    from quarter_traffic
    group by account, quarter_index
    union all
    select
        account,
        cast(floor(start_quarter / 4.0) as bigint) as hour_index,
        start_quarter - 4 * cast(floor(start_quarter / 4.0) as bigint) as quarter_of_hour,
        0 as holding_seconds,
        0 as talk_seconds,
        0 as external_holding_seconds,
        count(*) as call_attempts
    from call_hours
    group by account, start_quarter
),

hourly_traffic as (
    select
        account,
        hour_index,
        sum(holding_seconds) as holding_seconds,
        sum(talk_seconds) as talk_seconds,
        sum(external_holding_seconds) as external_holding_seconds,
        sum(call_attempts) as call_attempts,
        sum(case when quarter_of_hour = 0 then holding_seconds else 0 end) as holding_seconds_00,
        sum(case when quarter_of_hour = 1 then holding_seconds else 0 end) as holding_seconds_15,
        sum(case when quarter_of_hour = 2 then holding_seconds else 0 end) as holding_seconds_30,
        sum(case when quarter_of_hour = 3 then holding_seconds else 0 end) as holding_seconds_45,
        sum(case when quarter_of_hour = 0 then call_attempts else 0 end) as call_attempts_00,
        sum(case when quarter_of_hour = 1 then call_attempts else 0 end) as call_attempts_15,
        sum(case when quarter_of_hour = 2 then call_attempts else 0 end) as call_attempts_30,
        sum(case when quarter_of_hour = 3 then call_attempts else 0 end) as call_attempts_45
    from quarters
    group by account, hour_index
),

events as (
    -- kind 'call': calls in progress; kind 'leg': legs up (channels)
    select account, 'call' as kind, start_epoch as event_epoch, 1 as delta
    from calls where end_epoch > start_epoch
    union all
    select account, 'call' as kind, end_epoch as event_epoch, -1 as delta
    from calls where end_epoch > start_epoch
    union all
    select account, 'leg' as kind, start_epoch as event_epoch, 1 as delta from legs
    union all
    select account, 'leg' as kind, end_epoch as event_epoch, -1 as delta from legs
),

running as (
    -- In progress in the account. Ends sort before starts at the same second: intervals are
    -- half-open. (The keys are never null; "nulls first" is spelled out so every dialect orders
    -- the frame the same way.)
    select
        account,
        kind,
        event_epoch,
        delta,
        sum(delta) over (
            partition by account, kind
            order by event_epoch nulls first, delta nulls first
            rows between unbounded preceding and current row
        ) as in_progress
    from events
),

hourly_peak_at_starts as (
    -- the most in progress right after a start in the hour
    select
        running.account,
        cast(floor((running.event_epoch - bounds.first_hour_epoch) / 3600.0) as bigint)
            as hour_index,
        max(case when running.kind = 'call' then running.in_progress end) as calls_at_starts,
        max(case when running.kind = 'leg' then running.in_progress end) as legs_at_starts
    from running
    cross join bounds
    where running.delta = 1
    group by
        running.account,
        cast(floor((running.event_epoch - bounds.first_hour_epoch) / 3600.0) as bigint)
),

leg_hours as (
    select
        leg_quarters.account,
        cast(floor(leg_quarters.start_quarter / 4.0) as bigint) as start_index,
        cast(floor(leg_quarters.last_quarter / 4.0) as bigint) as last_index
    from leg_quarters
),

carried_in as (
    -- calls and legs already in progress when the hour begins: every hour after the one they
    -- start in, up to the one holding their last second
    select
        call_hours.account,
        call_hours.start_index + numbers.n as hour_index,
        'call' as kind
    from call_hours
    inner join span_numbers as numbers
        on numbers.n >= 1 and numbers.n <= call_hours.last_index - call_hours.start_index
    where call_hours.has_duration
    union all
    select
        leg_hours.account,
        leg_hours.start_index + numbers.n as hour_index,
        'leg' as kind
    from leg_hours
    inner join span_numbers as numbers
        on numbers.n >= 1 and numbers.n <= leg_hours.last_index - leg_hours.start_index
),

carried_in_counts as (
    select
        account,
        hour_index,
        count(case when kind = 'call' then 1 end) as calls_at_start,
        count(case when kind = 'leg' then 1 end) as legs_at_start
    from carried_in
    group by account, hour_index
),

joined as (
    select
        hours.account,
        hours.hour_start_epoch,
        to_timestamp(hours.hour_start_epoch) at time zone 'UTC' as hour_start_utc,
        to_timestamp(hours.hour_start_epoch) at time zone {{ reporting_timezone }}
            as hour_start_local,
        cast(coalesce(hourly_traffic.call_attempts, 0) as bigint) as call_attempts,
        cast(coalesce(hourly_traffic.holding_seconds, 0) as bigint) as holding_seconds,
        cast(coalesce(hourly_traffic.talk_seconds, 0) as bigint) as talk_seconds,
        cast(coalesce(hourly_traffic.external_holding_seconds, 0) as bigint)
            as external_holding_seconds,
        cast(coalesce(hourly_traffic.holding_seconds_00, 0) as bigint) as holding_seconds_00,
        cast(coalesce(hourly_traffic.holding_seconds_15, 0) as bigint) as holding_seconds_15,
        cast(coalesce(hourly_traffic.holding_seconds_30, 0) as bigint) as holding_seconds_30,
        cast(coalesce(hourly_traffic.holding_seconds_45, 0) as bigint) as holding_seconds_45,
        cast(coalesce(hourly_traffic.call_attempts_00, 0) as bigint) as call_attempts_00,
        cast(coalesce(hourly_traffic.call_attempts_15, 0) as bigint) as call_attempts_15,
        cast(coalesce(hourly_traffic.call_attempts_30, 0) as bigint) as call_attempts_30,
        cast(coalesce(hourly_traffic.call_attempts_45, 0) as bigint) as call_attempts_45,
        cast(
            greatest(
                coalesce(hourly_peak_at_starts.legs_at_starts, 0),
                coalesce(carried_in_counts.legs_at_start, 0)
            ) as bigint
        ) as peak_concurrent_channels,
        cast(
            greatest(
                coalesce(hourly_peak_at_starts.calls_at_starts, 0),
                coalesce(carried_in_counts.calls_at_start, 0)
            ) as bigint
        ) as peak_concurrent_calls,
        hours.hour_start_epoch >= hours.first_call_epoch
        and hours.hour_start_epoch + 3600 <= hours.complete_before_epoch as is_complete
    from hours
    left join hourly_traffic
        on hourly_traffic.account = hours.account
        and hourly_traffic.hour_index = hours.hour_index
    left join hourly_peak_at_starts
        on hourly_peak_at_starts.account = hours.account
        and hourly_peak_at_starts.hour_index = hours.hour_index
    left join carried_in_counts
        on carried_in_counts.account = hours.account
        and carried_in_counts.hour_index = hours.hour_index
),

ranked as (
    select
        joined.*,
        cast(hour_start_local as date) as call_date,
        cast(extract(hour from hour_start_local) as integer) as hour_of_day,
        row_number() over (
            partition by account, cast(hour_start_local as date)
            order by holding_seconds desc, hour_start_epoch
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
        holding_seconds,
        cast(holding_seconds as double) / 3600 as carried_erlangs,
        talk_seconds,
        cast(talk_seconds as double) / 3600 as talk_erlangs,
        external_holding_seconds,
        cast(external_holding_seconds as double) / 3600 as external_erlangs,
        holding_seconds_00,
        holding_seconds_15,
        holding_seconds_30,
        holding_seconds_45,
        call_attempts_00,
        call_attempts_15,
        call_attempts_30,
        call_attempts_45,
        peak_concurrent_channels,
        peak_concurrent_calls,
        traffic_rank = 1 and holding_seconds > 0 as is_busy_hour,
        is_complete
    from ranked
)

select * from final
