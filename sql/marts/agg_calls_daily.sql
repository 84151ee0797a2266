-- grain: one row per account, day (reporting time zone) and call direction;
-- key: (account, call_date, direction)
-- incremental: partition (account, call_date)
--   dim_accounts: call_date covers days between old and new first_call_epoch, complete_before_epoch
--
-- Calls are counted on the day they started (fct_calls.call_date), including calls that end
-- the next day. Only accounts, days and directions with at least one call have a row. Every
-- ratio keeps its numerator and denominator as columns, so BI tools can re-aggregate over days
-- and over accounts (figures across accounts: sum the counts, then divide; never average the
-- ratios); a ratio whose denominator is 0 is null.
--
--   attempts                 calls
--   answered_calls           calls with is_answered
--   asr                      answer-seizure ratio = answered_calls / attempts
--   effective_calls          calls with is_network_effective: answered, no answer, busy or
--                            rejected (Q.850 cause 21); the ITU-T E.425 NER numerator
--   rejected_calls           of effective_calls, terminal rejections (fct_calls.is_rejected)
--   ner                      network effectiveness ratio (ITU-T E.425) = effective_calls / attempts
--   talk_seconds             sum of talk_seconds; talk_minutes = talk_seconds / 60
--   acd_seconds              average call duration = talk_seconds / answered_calls
--   answered_wait_seconds    sum of wait_seconds of answered calls
--   asa_seconds              average speed of answer = answered_wait_seconds / answered_calls
--   cost                     sum of cost (the charge of the calls' own legs)
--   forward_cost             sum of forward_cost: the charge of the outbound legs that forwarded
--                            the day's inbound calls to mobiles (an outbound cost, booked under
--                            its own destination in agg_destination_monthly); the day's total
--                            charge is cost + forward_cost
--   is_complete              the day is entirely inside what has been loaded of the account: it
--                            is later than the day of its first loaded call (data may start
--                            mid-day) and ended at least the sync's lag ({{ lag_seconds }} s)
--                            before its newest loaded call (dim_accounts.complete_before_epoch),
--                            so no late CDR is expected for it. Judged on the loaded data, never
--                            the wall clock. Comparisons and headlines use complete days only.
-- Inbound only (0 for other directions):
--   missed_calls             is_missed (not answered, any reason)
--   offered_calls            is_offered (answered or abandoned)
--   abandoned_calls          is_abandoned;  short_abandoned_calls: is_short_abandon
--   offered_calls_excl_short = offered_calls - short_abandoned_calls
--   abandoned_calls_excl_short = abandoned_calls - short_abandoned_calls
--   abandon_rate             abandoned_calls_excl_short / offered_calls_excl_short
--   answered_within_sl_calls is_answered_within_sl (answered within service_level_seconds)
--   service_level            answered_within_sl_calls / offered_calls_excl_short
--                            (short abandons are left out of both: misdials, not lost calls)
--   abandoned_within_sl_calls  abandoned with wait_seconds <= service_level_seconds (short
--                            abandons included); abandoned_after_sl_calls: abandoned later
--   answered_or_abandoned_after_sl_calls = answered_calls + abandoned_after_sl_calls
--   service_level_incl_short answered_within_sl_calls / offered_calls (every offered call)
--   service_level_excl_early_abandons
--                            answered_within_sl_calls / answered_or_abandoned_after_sl_calls
--                            (callers who hung up within the threshold are not held against it)
--   service_level_seconds, short_abandon_seconds: the thresholds this table was built with
with calls as (
    select * from fct_calls
),

accounts as (
    select account, first_call_date, complete_before_date from dim_accounts
),

daily as (
    select
        account,
        call_date,
        direction,
        count(*) as attempts,
        count(case when is_answered then 1 end) as answered_calls,
        count(case when is_network_effective then 1 end) as effective_calls,
        count(case when is_rejected then 1 end) as rejected_calls,
        cast(sum(talk_seconds) as bigint) as talk_seconds,
        cast(sum(case when is_answered then wait_seconds else 0 end) as bigint)
            as answered_wait_seconds,
        cast(sum(cost) as decimal(18, 6)) as cost,
        cast(sum(forward_cost) as decimal(18, 6)) as forward_cost,
        count(case when is_missed then 1 end) as missed_calls,
        count(case when is_offered then 1 end) as offered_calls,
        count(case when is_abandoned then 1 end) as abandoned_calls,
        count(case when is_short_abandon then 1 end) as short_abandoned_calls,
        count(case when is_answered_within_sl then 1 end) as answered_within_sl_calls,
        count(case when is_abandoned and wait_seconds <= {{ service_level_seconds }} then 1 end)
            as abandoned_within_sl_calls,
        count(case when is_abandoned and wait_seconds > {{ service_level_seconds }} then 1 end)
            as abandoned_after_sl_calls
    from calls
    group by account, call_date, direction
),

final as (
    select
        daily.account,
        daily.call_date,
        direction,
        attempts,
        answered_calls,
        cast(answered_calls as double) / nullif(attempts, 0) as asr,
        effective_calls,
        rejected_calls,
        cast(effective_calls as double) / nullif(attempts, 0) as ner,
        talk_seconds,
        cast(talk_seconds as double) / 60 as talk_minutes,
        cast(talk_seconds as double) / nullif(answered_calls, 0) as acd_seconds,
        answered_wait_seconds,
        cast(answered_wait_seconds as double) / nullif(answered_calls, 0) as asa_seconds,
        cost,
        forward_cost,
        missed_calls,
        offered_calls,
        abandoned_calls,
        short_abandoned_calls,
        offered_calls - short_abandoned_calls as offered_calls_excl_short,
        abandoned_calls - short_abandoned_calls as abandoned_calls_excl_short,
        cast(abandoned_calls - short_abandoned_calls as double)
        / nullif(offered_calls - short_abandoned_calls, 0) as abandon_rate,
        answered_within_sl_calls,
        cast(answered_within_sl_calls as double)
        / nullif(offered_calls - short_abandoned_calls, 0) as service_level,
        abandoned_within_sl_calls,
        abandoned_after_sl_calls,
        case
            when direction = 'inbound' then answered_calls + abandoned_after_sl_calls else 0
        end as answered_or_abandoned_after_sl_calls,
        cast(answered_within_sl_calls as double) / nullif(offered_calls, 0)
            as service_level_incl_short,
        cast(answered_within_sl_calls as double)
        / nullif(
            case
                when direction = 'inbound' then answered_calls + abandoned_after_sl_calls else 0
            end,
            0
        ) as service_level_excl_early_abandons,
        {{ service_level_seconds }} as service_level_seconds,
        {{ short_abandon_seconds }} as short_abandon_seconds,
        coalesce(
            daily.call_date > accounts.first_call_date
            and daily.call_date < accounts.complete_before_date,
            false
        ) as is_complete
    from daily
    left join accounts on accounts.account = daily.account
)

select * from final
