-- grain: one row per account and inbound call from an outside number (fct_calls direction
-- inbound with an external_number); key: (account, call_key)
-- incremental: partition (account, call_date)
--   fct_calls: call_date covers days of [start_epoch, start_epoch + {{ repeat_call_days }} * 86400 + 1)
--
-- Each inbound call with the number's previous inbound call to the same account, when that one
-- started at most repeat_call_days ({{ repeat_call_days }}) days before: the calls a repeat
-- caller makes. A number that called account a and then account b has not called back the same
-- company, so it is no repeat. rpt_repeat_callers sums it per number.
--
-- Rebuilt day by day: a changed call changes its own row and those of the number's calls in
-- the repeat_call_days after it (their previous call may be another one now), never older ones.
--
--   caller_number            the outside number (fct_calls.external_number)
--   previous_call_key        the number's previous inbound call to the account, when it started
--                            at most repeat_call_days before this one; else null
--   gap_seconds              start - the previous call's start (null without one in the window)
--   is_repeat                there is such a previous call: this is a repeat call
--   is_previous_answered     the previous call was answered (null without one)
with inbound as (
    select
        account,
        call_key,
        call_date,
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
        lag(call_key) over (
            partition by account, external_number order by start_epoch, call_key
        ) as previous_call_key,
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
        previous_start_epoch is not null
        and start_epoch - previous_start_epoch <= {{ repeat_call_days }} * 86400 as is_repeat
    from sequenced
),

final as (
    select
        account,
        call_key,
        call_date,
        external_number as caller_number,
        start_epoch,
        started_at_utc,
        is_answered,
        is_missed,
        case when is_repeat then previous_call_key end as previous_call_key,
        case when is_repeat then start_epoch - previous_start_epoch end as gap_seconds,
        is_repeat,
        case when is_repeat then previous_answered end as is_previous_answered
    from flagged
)

select * from final
