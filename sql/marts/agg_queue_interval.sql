-- grain: one row per account, interval of the reporting zone's clock and queue, for the
-- intervals in which at least one call entered the queue; key: (account, interval_start_utc, queue_name)
-- incremental: partition (account, call_date)
--   dim_accounts: call_date covers days between old and new first_call_epoch, complete_before_epoch - 1800, complete_before_epoch
--
-- Built from fct_queue_calls: a call counts in the interval it entered the queue (the usual
-- contact-centre convention: calls are counted where they arrived; its talk and holding time
-- count there too, also when they run into the next interval or past local midnight). Intervals
-- are {{ queue_interval_seconds }} s ([models] queue_interval_minutes, 15 or 30) and start where
-- the local clock shows a multiple of them: the spring changeover day has 2 (or 4) fewer, the
-- autumn one two 02:00 rows, one hour of real time apart. Intervals without calls have no row.
-- A call through several queues counts as offered to each it entered and as answered by the one
-- whose leg answered it. Every ratio keeps its numerator and denominator; null when the
-- denominator is 0.
--
--   interval_start_utc, interval_start_local   the interval's start, UTC and local wall clock;
--                          interval_start_epoch: in Unix seconds; interval_minutes its length
--   call_date              the local day of the interval
--   offered_calls          calls offered to the queue (fct_queue_calls.is_offered)
--   answered_calls         answered by this queue; answered_within_sl_calls: within
--                          service_level_seconds of entering it
--   abandoned_calls        the caller hung up waiting in this queue (its last);
--                          short_abandoned_calls: within short_abandon_seconds;
--                          abandoned_within_sl_calls / abandoned_after_sl_calls: split at
--                          service_level_seconds (short abandons in the first)
--   overflowed_calls       left the queue unanswered for another queue (or were answered outside
--                          any queue): offered = answered + abandoned + overflowed
--   offered_calls_excl_short, abandoned_calls_excl_short, answered_or_abandoned_after_sl_calls
--                          as in agg_calls_daily
--   service_level          answered_within_sl_calls / offered_calls_excl_short;
--                          service_level_incl_short, service_level_excl_early_abandons and
--                          abandon_rate as in agg_calls_daily (the same conventions)
--   answered_wait_seconds  sum of the answered calls' waits in the queue; ASA asa_seconds =
--                          answered_wait_seconds / answered_calls
--   longest_wait_seconds   the longest wait of an offered call, answered or not (not additive:
--                          take the max over intervals, never the sum)
--   answered_wait_0_10_calls .. answered_wait_60_plus_calls, abandoned_wait_0_10_calls ..
--                          abandoned_wait_60_plus_calls: answered and abandoned calls by their
--                          wait, in [0, 10), [10, 20), [20, 30), [30, 60) and 60+ seconds
--   talk_seconds           billsec of the queue's legs; holding_seconds: the callers' time in the
--                          queue (waiting and talking), fct_queue_calls.holding_seconds
--   erlangs                holding_seconds / period_seconds: the traffic offered to the queue
--                          in the interval in Erlangs (calls x average holding time / period,
--                          the Erlang C input); period_seconds = the interval's length
--   is_complete            the interval starts at or after the account's first loaded call and
--                          ends at least the sync's lag ({{ lag_seconds }} s) before its newest
--                          loaded call (dim_accounts.complete_before_epoch), as agg_traffic_hourly
with queue_calls as (
    select * from fct_queue_calls
),

accounts as (
    select account, first_call_epoch, complete_before_epoch from dim_accounts
),

grouped as (
    select
        account,
        interval_start_epoch,
        call_date,
        queue_name,
        min(queue_id) as queue_id,
        count(case when is_offered then 1 end) as offered_calls,
        count(case when is_answered then 1 end) as answered_calls,
        count(case when is_answered_within_sl then 1 end) as answered_within_sl_calls,
        count(case when is_abandoned then 1 end) as abandoned_calls,
        count(case when is_short_abandon then 1 end) as short_abandoned_calls,
        count(case when is_abandoned and wait_seconds <= {{ service_level_seconds }} then 1 end)
            as abandoned_within_sl_calls,
        count(case when is_abandoned and wait_seconds > {{ service_level_seconds }} then 1 end)
            as abandoned_after_sl_calls,
        count(case when is_overflowed then 1 end) as overflowed_calls,
        cast(sum(case when is_answered then wait_seconds else 0 end) as bigint)
            as answered_wait_seconds,
        max(case when is_offered then wait_seconds end) as longest_wait_seconds,
        count(case when is_answered and wait_seconds < 10 then 1 end) as answered_wait_0_10_calls,
        count(case when is_answered and wait_seconds >= 10 and wait_seconds < 20 then 1 end)
            as answered_wait_10_20_calls,
        count(case when is_answered and wait_seconds >= 20 and wait_seconds < 30 then 1 end)
            as answered_wait_20_30_calls,
        count(case when is_answered and wait_seconds >= 30 and wait_seconds < 60 then 1 end)
            as answered_wait_30_60_calls,
        count(case when is_answered and wait_seconds >= 60 then 1 end)
            as answered_wait_60_plus_calls,
        count(case when is_abandoned and wait_seconds < 10 then 1 end)
            as abandoned_wait_0_10_calls,
        count(case when is_abandoned and wait_seconds >= 10 and wait_seconds < 20 then 1 end)
            as abandoned_wait_10_20_calls,
        count(case when is_abandoned and wait_seconds >= 20 and wait_seconds < 30 then 1 end)
            as abandoned_wait_20_30_calls,
        count(case when is_abandoned and wait_seconds >= 30 and wait_seconds < 60 then 1 end)
            as abandoned_wait_30_60_calls,
        count(case when is_abandoned and wait_seconds >= 60 then 1 end)
            as abandoned_wait_60_plus_calls,
        cast(sum(talk_seconds) as bigint) as talk_seconds,
        cast(sum(holding_seconds) as bigint) as holding_seconds
    from queue_calls
    group by account, interval_start_epoch, call_date, queue_name
),

final as (
    select
        grouped.account,
        to_timestamp(interval_start_epoch) at time zone 'UTC' as interval_start_utc,
        to_timestamp(interval_start_epoch) at time zone {{ reporting_timezone }}
            as interval_start_local,
        interval_start_epoch,
        {{ queue_interval_seconds }} / 60 as interval_minutes,
        call_date,
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
        {{ queue_interval_seconds }} as period_seconds,
        cast(holding_seconds as double) / {{ queue_interval_seconds }} as erlangs,
        {{ service_level_seconds }} as service_level_seconds,
        {{ short_abandon_seconds }} as short_abandon_seconds,
        coalesce(
            interval_start_epoch >= accounts.first_call_epoch
            and interval_start_epoch + {{ queue_interval_seconds }}
            <= accounts.complete_before_epoch,
            false
        ) as is_complete
    from grouped
    left join accounts on accounts.account = grouped.account
)

select * from final
