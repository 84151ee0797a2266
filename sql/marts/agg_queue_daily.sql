-- grain: one row per account, day (reporting time zone) and queue, for the days on which at
-- least one call entered the queue; key: (account, call_date, queue_name)
-- incremental: partition (account, call_date)
--   dim_accounts: call_date covers days between old and new first_call_epoch, complete_before_epoch
--
-- The day's intervals of agg_queue_interval summed (a call counts on the local day it entered
-- the queue, also when it ends after midnight): every count and second is the sum of the
-- intervals', the longest wait their maximum, and the ratios are computed again from the summed
-- numerators and denominators (never averaged). The columns and their definitions are
-- agg_queue_interval's (see there), except:
--   period_seconds         the local day's length in seconds: 86400, 82800 on the spring
--                          changeover day, 90000 on the autumn one
--   erlangs                holding_seconds / period_seconds: the queue's average traffic over
--                          the day, in Erlangs
--   is_complete            as agg_calls_daily: the day is later than the day of the account's
--                          first loaded call and ended at least the sync's lag
--                          ({{ lag_seconds }} s) before its newest loaded call
with intervals as (
    select * from agg_queue_interval
),

accounts as (
    select account, first_call_date, complete_before_date from dim_accounts
),

daily as (
    select
        account,
        call_date,
        queue_name,
        min(queue_id) as queue_id,
        cast(sum(offered_calls) as bigint) as offered_calls,
        cast(sum(answered_calls) as bigint) as answered_calls,
        cast(sum(answered_within_sl_calls) as bigint) as answered_within_sl_calls,
        cast(sum(abandoned_calls) as bigint) as abandoned_calls,
        cast(sum(short_abandoned_calls) as bigint) as short_abandoned_calls,
        cast(sum(abandoned_within_sl_calls) as bigint) as abandoned_within_sl_calls,
        cast(sum(abandoned_after_sl_calls) as bigint) as abandoned_after_sl_calls,
        cast(sum(overflowed_calls) as bigint) as overflowed_calls,
        cast(sum(answered_wait_seconds) as bigint) as answered_wait_seconds,
        max(longest_wait_seconds) as longest_wait_seconds,
        cast(sum(answered_wait_0_10_calls) as bigint) as answered_wait_0_10_calls,
        cast(sum(answered_wait_10_20_calls) as bigint) as answered_wait_10_20_calls,
        cast(sum(answered_wait_20_30_calls) as bigint) as answered_wait_20_30_calls,
        cast(sum(answered_wait_30_60_calls) as bigint) as answered_wait_30_60_calls,
        cast(sum(answered_wait_60_plus_calls) as bigint) as answered_wait_60_plus_calls,
        cast(sum(abandoned_wait_0_10_calls) as bigint) as abandoned_wait_0_10_calls,
        cast(sum(abandoned_wait_10_20_calls) as bigint) as abandoned_wait_10_20_calls,
        cast(sum(abandoned_wait_20_30_calls) as bigint) as abandoned_wait_20_30_calls,
        cast(sum(abandoned_wait_30_60_calls) as bigint) as abandoned_wait_30_60_calls,
        cast(sum(abandoned_wait_60_plus_calls) as bigint) as abandoned_wait_60_plus_calls,
        cast(sum(talk_seconds) as bigint) as talk_seconds,
        cast(sum(holding_seconds) as bigint) as holding_seconds
    from intervals
    group by account, call_date, queue_name
),

sized as (
    select
        daily.*,
        cast(
            epoch(cast(call_date + 1 as timestamp) at time zone {{ reporting_timezone }})
            - epoch(cast(call_date as timestamp) at time zone {{ reporting_timezone }})
            as bigint
        ) as period_seconds
    from daily
),

final as (
    select
        sized.account,
        sized.call_date,
        queue_id,
        queue_name,
        offered_calls,
        answered_calls,
        answered_within_sl_calls,
        abandoned_calls,
        short_abandoned_calls,
        abandoned_within_sl_calls,
        abandoned_after_sl_calls,
        overflowed_calls,
        offered_calls - short_abandoned_calls as offered_calls_excl_short,
        abandoned_calls - short_abandoned_calls as abandoned_calls_excl_short,
        answered_calls + abandoned_after_sl_calls as answered_or_abandoned_after_sl_calls,
        cast(answered_within_sl_calls as double)
        / nullif(offered_calls - short_abandoned_calls, 0) as service_level,
        cast(answered_within_sl_calls as double) / nullif(offered_calls, 0)
            as service_level_incl_short,
        cast(answered_within_sl_calls as double)
        / nullif(answered_calls + abandoned_after_sl_calls, 0) as service_level_excl_early_abandons,
        cast(abandoned_calls - short_abandoned_calls as double)
        / nullif(offered_calls - short_abandoned_calls, 0) as abandon_rate,
        answered_wait_seconds,
        cast(answered_wait_seconds as double) / nullif(answered_calls, 0) as asa_seconds,
        longest_wait_seconds,
        answered_wait_0_10_calls,
        answered_wait_10_20_calls,
        answered_wait_20_30_calls,
        answered_wait_30_60_calls,
        answered_wait_60_plus_calls,
        abandoned_wait_0_10_calls,
        abandoned_wait_10_20_calls,
        abandoned_wait_20_30_calls,
        abandoned_wait_30_60_calls,
        abandoned_wait_60_plus_calls,
        talk_seconds,
        holding_seconds,
        period_seconds,
        cast(holding_seconds as double) / period_seconds as erlangs,
        {{ service_level_seconds }} as service_level_seconds,
        {{ short_abandon_seconds }} as short_abandon_seconds,
        coalesce(
            sized.call_date > accounts.first_call_date
            and sized.call_date < accounts.complete_before_date,
            false
        ) as is_complete
    from sized
    left join accounts on accounts.account = sized.account
)

select * from final
