-- grain: one row per account and outside number that called the account again within
-- repeat_call_days ({{ repeat_call_days }}) days of its previous inbound call;
-- key: (account, caller_number)
-- incremental: partition (account, caller_number)
--   fct_calls: caller_number = external_number
--
-- Looks at inbound calls (answered or not) with an external_number, over all loaded history.
-- A repeat call is an inbound call that started at most repeat_call_days days after the same
-- number's previous inbound call to the same account started: a number that called account a
-- and then account b has not called back the same company, so it is no repeat. Across
-- accounts, a number can have one row per account.
--
--   inbound_calls               the number's inbound calls
--   repeat_calls                of those, repeat calls
--   repeat_rate                 repeat_calls / inbound_calls
--   repeats_after_answered      repeat calls whose previous call had been answered (the first
--                               contact did not settle it)
--   repeats_after_missed        repeat calls whose previous call had been missed
--   answered_calls, missed_calls  of inbound_calls
--   shortest_gap_seconds        the shortest time between two consecutive inbound calls
--   first_call_at_utc, last_call_at_utc
with inbound as (
    select
        account,
        call_key,
        external_number,
        start_epoch,
        started_at_utc,
        is_answered,
        is_missed
    from fct_calls
    where direction = 'inbound' and external_number is not null
),

sequenced as (
    select
        inbound.*,
        lag(start_epoch) over (
            partition by account, external_number order by start_epoch, call_key
        ) as previous_start_epoch,
        lag(is_answered) over (
            partition by account, external_number order by start_epoch, call_key
        ) as previous_answered
    from inbound
),

flagged as (
    select
        sequenced.*,
        start_epoch - previous_start_epoch as gap_seconds,
        previous_start_epoch is not null
        and start_epoch - previous_start_epoch <= {{ repeat_call_days }} * 86400 as is_repeat
    from sequenced
),

per_caller as (
    select
        account,
        external_number as caller_number,
        count(*) as inbound_calls,
        count(case when is_repeat then 1 end) as repeat_calls,
        count(case when is_repeat and previous_answered then 1 end) as repeats_after_answered,
        count(case when is_repeat and not previous_answered then 1 end) as repeats_after_missed,
        count(case when is_answered then 1 end) as answered_calls,
        count(case when is_missed then 1 end) as missed_calls,
        min(gap_seconds) as shortest_gap_seconds,
        min(started_at_utc) as first_call_at_utc,
        max(started_at_utc) as last_call_at_utc
    from flagged
    group by account, external_number
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
    where repeat_calls > 0
)

select * from final
