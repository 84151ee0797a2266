-- grain: one row per account, month (reporting time zone), call direction and destination;
-- key: (account, month_start, direction, destination)
-- incremental: partition (account, month_start)
--   fct_calls: month_start covers months of [start_epoch, start_epoch + 1)
--
-- destination is fct_calls.destination, 'unknown' when null: for outbound calls the rated
-- destination (e.g. 'Spain Mobile (Local)'), for other directions whatever the API puts there.
-- Calls count in the month of their start (fct_calls.call_date).
--
-- Cost stays with the leg that was charged, under its own direction and destination: the
-- outbound legs that forwarded an inbound call to a mobile (fct_calls.forward_*) are one
-- outbound attempt to their own destination (forward_destination), with their talk and cost;
-- the inbound call keeps its own legs' (usually no charge).
--
--   month_start       first day of the month
--   attempts          calls, plus one outbound attempt per forwarded call; answered_calls:
--                     those answered (is_answered; is_forward_answered)
--   asr               answered_calls / attempts
--   talk_seconds      sum of talk_seconds; talk_minutes = talk_seconds / 60
--   acd_seconds       talk_seconds / answered_calls
--   cost              sum of cost (the CDRs' charge, in the account's currency: summing it
--                     across accounts assumes they are billed in one currency)
--   cost_per_minute   cost / talk_minutes
with calls as (
    select * from fct_calls
),

parts as (
    select
        account,
        call_date,
        direction,
        destination,
        is_answered,
        own_talk_seconds as talk_seconds,
        cost
    from calls
    union all
    select
        account,
        call_date,
        'outbound' as direction,
        forward_destination as destination,
        is_forward_answered as is_answered,
        forward_talk_seconds as talk_seconds,
        forward_cost as cost
    from calls
    where forward_leg_count > 0
),

monthly as (
    select
        account,
        cast(date_trunc('month', call_date) as date) as month_start,
        direction,
        coalesce(destination, 'unknown') as destination,
        count(*) as attempts,
        count(case when is_answered then 1 end) as answered_calls,
        cast(sum(talk_seconds) as bigint) as talk_seconds,
        cast(sum(cost) as decimal(18, 6)) as cost
    from parts
    group by
        account,
        cast(date_trunc('month', call_date) as date),
        direction,
        coalesce(destination, 'unknown')
),

final as (
    select
        account,
        month_start,
        direction,
        destination,
        attempts,
        answered_calls,
        cast(answered_calls as double) / nullif(attempts, 0) as asr,
        talk_seconds,
        cast(talk_seconds as double) / 60 as talk_minutes,
        cast(talk_seconds as double) / nullif(answered_calls, 0) as acd_seconds,
        cost,
        cast(cost as double) / nullif(cast(talk_seconds as double) / 60, 0) as cost_per_minute
    from monthly
)

select * from final
