-- grain: one row per account and month (reporting time zone) with at least one hour in
-- agg_traffic_hourly; key: (account, month)
-- incremental: partition (account, month)
--   agg_traffic_hourly: month covers months of [hour_start_epoch, hour_start_epoch + 1)
--   dim_accounts: month covers months between old and new first_call_epoch, complete_before_epoch
--
-- The month's busy hour, after ITU-T E.500 / E.600, on carried traffic (holding time, legs:
-- agg_traffic_hourly.holding_seconds_00 .. _45), over the days counted: the month's complete
-- business days (business_days {{ business_days }}, ISO 1 = Monday; complete as in
-- agg_calls_daily.is_complete: after the account's first loaded day, and ended at least the
-- sync's lag before its newest loaded call; partial days and days inside the lag are left out). Windows are 60 minutes starting on a quarter hour of the local clock, inside
-- the day (the last one starts at 23:00).
--
--   month                 the month's first day
--   days_counted          complete business days of the month (the averages' denominator)
--   tcbh_start_local      the time-consistent busy hour (TCBH): the start ('HH:MM', local time
--                         of day, a quarter hour) of the 60 minutes whose traffic, averaged over
--                         the days counted, is the highest (the earliest on a tie); null when
--                         no day is counted. On a day whose clocks go back, a time of day that
--                         occurs twice counts with its busier window; on a day they go forward,
--                         a time that does not occur counts as no traffic.
--   tcbh_start_minute     the same as minutes after midnight
--   tcbh_erlangs          the average traffic in that window over the days counted
--                         (holding seconds in it / 3600 / days_counted)
--   tcbh_holding_seconds  the holding seconds in that window, summed over the days counted
--   tcbh_call_attempts    busy-hour call attempts (BHCA): call attempts started in that window,
--                         averaged over the days counted
--   adph_erlangs          average daily peak hour (ADPH): each counted day's busiest 60 minutes
--                         (its own start time), averaged over the days counted; at least
--                         tcbh_erlangs
with hours as (
    select * from agg_traffic_hourly
),

accounts as (
    select account, first_call_date, complete_before_date from dim_accounts
),

days as (
    select distinct
        hours.account,
        hours.call_date,
        cast(date_trunc('month', hours.call_date) as date) as month,
        coalesce(
            hours.call_date > accounts.first_call_date
            and hours.call_date < accounts.complete_before_date,
            false
        )
        and extract(isodow from hours.call_date) in ({{ business_days }}) as is_counted
    from hours
    left join accounts on accounts.account = hours.account
),

quarters as (
    select
        account, call_date, hour_start_epoch as quarter_epoch, hour_of_day * 60 as minute_of_day,
        holding_seconds_00 as holding_seconds, call_attempts_00 as call_attempts
    from hours
    union all
    select
        account, call_date, hour_start_epoch + 900, hour_of_day * 60 + 15,
        holding_seconds_15, call_attempts_15
    from hours
    union all
    select
        account, call_date, hour_start_epoch + 1800, hour_of_day * 60 + 30,
        holding_seconds_30, call_attempts_30
    from hours
    union all
    select
        account, call_date, hour_start_epoch + 2700, hour_of_day * 60 + 45,
        holding_seconds_45, call_attempts_45
    from hours
),

windows as (
    -- the 60 minutes from each quarter of a day: it and the day's three next quarters
    select
        quarters.account,
        quarters.call_date,
        quarters.minute_of_day,
        sum(quarters.holding_seconds) over (
            partition by quarters.account, quarters.call_date
            order by quarters.quarter_epoch nulls first
            rows between current row and 3 following
        ) as holding_seconds,
        sum(quarters.call_attempts) over (
            partition by quarters.account, quarters.call_date
            order by quarters.quarter_epoch nulls first
            rows between current row and 3 following
        ) as call_attempts,
        count(*) over (
            partition by quarters.account, quarters.call_date
            order by quarters.quarter_epoch nulls first
            rows between current row and 3 following
        ) as quarter_count
    from quarters
),

counted_windows as (
    -- one window per counted day and time of day (the busier one on a day that has it twice)
    select
        windows.account,
        days.month,
        windows.call_date,
        windows.minute_of_day,
        max(windows.holding_seconds) as holding_seconds,
        max(windows.call_attempts) as call_attempts
    from windows
    inner join days
        on days.account = windows.account and days.call_date = windows.call_date
    where days.is_counted and windows.quarter_count = 4
    group by windows.account, days.month, windows.call_date, windows.minute_of_day
),

months as (
    select
        account,
        month,
        count(case when is_counted then 1 end) as days_counted
    from days
    group by account, month
),

by_time_of_day as (
    select
        account,
        month,
        minute_of_day,
        sum(holding_seconds) as holding_seconds,
        sum(call_attempts) as call_attempts,
        row_number() over (
            partition by account, month
            order by sum(holding_seconds) desc, minute_of_day
        ) as tcbh_rank
    from counted_windows
    group by account, month, minute_of_day
),

daily_peaks as (
    select account, month, call_date, max(holding_seconds) as peak_holding_seconds
    from counted_windows
    group by account, month, call_date
),

adph as (
    select account, month, sum(peak_holding_seconds) as peak_holding_seconds
    from daily_peaks
    group by account, month
),

final as (
    select
        months.account,
        months.month,
        months.days_counted,
        lpad(cast(cast(floor(tcbh.minute_of_day / 60.0) as bigint) as varchar), 2, '0')
        || ':'
        || lpad(
            cast(tcbh.minute_of_day - 60 * cast(floor(tcbh.minute_of_day / 60.0) as bigint)
                as varchar),
            2,
            '0'
        ) as tcbh_start_local,
        tcbh.minute_of_day as tcbh_start_minute,
        cast(tcbh.holding_seconds as double) / 3600 / nullif(months.days_counted, 0)
            as tcbh_erlangs,
        cast(tcbh.holding_seconds as bigint) as tcbh_holding_seconds,
        cast(tcbh.call_attempts as double) / nullif(months.days_counted, 0)
            as tcbh_call_attempts,
        cast(adph.peak_holding_seconds as double) / 3600 / nullif(months.days_counted, 0)
            as adph_erlangs
    from months
    left join by_time_of_day as tcbh
        on tcbh.account = months.account
        and tcbh.month = months.month
        and tcbh.tcbh_rank = 1
    left join adph on adph.account = months.account and adph.month = months.month
)

select * from final
