-- grain: one row per account and outside number that called the account (every number, also
-- those that never called again: a rate over the repeaters alone reads high);
-- key: (account, caller_number)
-- materialized: view
--
-- Looks at inbound calls (answered or not) with an external_number, over all loaded history.
-- A repeat call is an inbound call that started at most repeat_call_days days after the same
-- number's previous inbound call to the same account started (fct_inbound_calls.is_repeat): a
-- number that called account a and then account b has not called back the same company, so it
-- is no repeat. Across accounts, a number can have one row per account.
--
-- A view over fct_inbound_calls: a row sums all of a number's history, and the numbers a sync
-- touches hold most of the history (a few numbers call every day), so a table of it would be
-- rebuilt almost whole after every sync; summed when read, it costs a scan of the inbound calls.
--
--   inbound_calls               the number's inbound calls
--   repeat_calls                of those, repeat calls
--   repeat_rate                 repeat_calls / inbound_calls
--   repeats_after_answered      repeat calls whose previous call had been answered (the first
--                               contact did not settle it)
--   repeats_after_missed        repeat calls whose previous call had been missed
--   answered_calls, missed_calls  of inbound_calls
--   shortest_gap_seconds        the shortest time between two consecutive inbound calls within
--                               repeat_call_days ({{ repeat_call_days }}); null without a repeat
--
-- Rates over time (per day, week or month of the first contact) are in
-- agg_repeat_contacts_daily, with numerators and denominators that roll up.
--   first_call_at_utc, last_call_at_utc
with inbound as (
    select * from fct_inbound_calls
),

per_caller as (
    select
        account,
        caller_number,
        count(*) as inbound_calls,
        count(case when is_repeat then 1 end) as repeat_calls,
        count(case when is_repeat and is_previous_answered then 1 end) as repeats_after_answered,
        count(case when is_repeat and not is_previous_answered then 1 end)
            as repeats_after_missed,
        count(case when is_answered then 1 end) as answered_calls,
        count(case when is_missed then 1 end) as missed_calls,
        -- gap_seconds is only set on repeats
        min(gap_seconds) as shortest_gap_seconds,
        min(started_at_utc) as first_call_at_utc,
        max(started_at_utc) as last_call_at_utc
    from inbound
    group by account, caller_number
),

final as (
    select
        account,
        caller_number,
        inbound_calls,
        repeat_calls,
        cast(repeat_calls as double) / nullif(inbound_calls, 0) as repeat_rate,
        repeats_after_answered,
        repeats_after_missed,
        answered_calls,
        missed_calls,
        shortest_gap_seconds,
        first_call_at_utc,
        last_call_at_utc,
        {{ repeat_call_days }} as repeat_call_days
    from per_caller
)

select * from final
