-- grain: one row per account and missed external inbound call (fct_calls.is_missed with an
-- external_number; anonymous callers cannot be called back); key: (account, missed_call_key)
-- incremental: partition (account, missed_ended_date)
--   fct_calls: missed_ended_date covers days of [start_epoch - 86400, end_epoch + 1)
--   dim_accounts: missed_ended_date covers days between old and new data_horizon_epoch - 3600
--   dim_accounts: missed_ended_date covers days between old and new data_horizon_epoch - 14400
--   dim_accounts: missed_ended_date covers days between old and new data_horizon_epoch - 86400
--
-- The callback of a missed call is the first later contact of the same account with the same
-- normalized number within 24 hours of the missed call's end: one of its outbound calls to it
-- (answered or not: the attempt counts), or an answered inbound call from it, starting at or
-- after the missed call ended and at most 24 hours later. A call of another account is not a
-- callback: the customer called one company and heard from another. callback_call_key is a
-- call of the missed call's account. A contact more than a day later is a new matter, not the
-- answer to this call (and bounding the search keeps the table rebuildable day by day: a
-- change reaches the missed calls of the day before it, never the whole history of a number).
--
--   missed_ended_date          the reporting time zone's date the missed call ended on (the
--                              table is rebuilt by it: a contact can only be the callback of
--                              calls that ended in the 24 hours before it)
--   time_to_callback_seconds   callback start - missed call end (null without a callback)
--   called_back_within_1h / _4h / _24h
--                              true if time_to_callback_seconds <= 1 / 4 / 24 hours; false if
--                              not and that window has fully passed by the account's data
--                              horizon (dim_accounts.data_horizon_epoch: the start of its newest
--                              call loaded; contacts are only known up to there, and one
--                              account's rows never depend on another's data); null while the
--                              window is still open (it may yet be called back in time)
--   callback_window_closed_1h / _4h / _24h
--                              the window has fully passed by the account's data horizon
--                              (data_horizon_epoch - missed end >= 1 / 4 / 24 hours), whatever
--                              happened in it. The denominator of every callback rate: the rate
--                              within 1 h = count(called_back_within_1h and
--                              callback_window_closed_1h) / count(callback_window_closed_1h).
--                              Counting only the rows already judged true or false would count
--                              early callbacks of open windows and not their misses (biased up).
--   is_too_recent              called_back_within_24h is null: the 24 h window is still open and
--                              no callback happened yet, so the row cannot be judged
--   callback_type              'callback' (the company called the number: our outbound call) or
--                              'retry' (the customer called again and got through: their answered
--                              inbound call); null without a callback
--   callback_user_id           who made the contact: the calling user of our outbound call, or
--                              the answering user of their inbound call
with calls as (
    select * from fct_calls
),

missed as (
    select
        account,
        call_key,
        call_date,
        started_at_utc,
        started_at_local,
        ended_at_utc,
        end_epoch,
        external_number,
        is_abandoned,
        is_business_hours
    from calls
    where is_missed and external_number is not null
),

contacts as (
    select
        account,
        call_key,
        call_date,
        started_at_utc,
        start_epoch,
        external_number,
        direction,
        is_answered,
        case when direction = 'outbound' then calling_user_id else answering_user_id end
            as user_id
    from calls
    where
        external_number is not null
        and (direction = 'outbound' or (direction = 'inbound' and is_answered))
),

horizon as (
    select account, data_horizon_epoch from dim_accounts
),

timeline as (
    -- missed calls (at their end) and contacts (at their start), per account and number in
    -- time order; at the same second a missed call sorts first, so a contact starting as it ends
    -- counts (no key is null; "nulls first" is spelled out so every dialect orders the frame the
    -- same way)
    select
        account,
        external_number,
        end_epoch as event_epoch,
        0 as event_order,
        call_key,
        'missed' as event
    from missed
    union all
    select
        account,
        external_number,
        start_epoch as event_epoch,
        1 as event_order,
        call_key,
        'contact' as event
    from contacts
),

next_contact as (
    select
        account,
        call_key as missed_call_key,
        external_number,
        event,
        event_epoch as missed_end_epoch,
        min(case when event = 'contact' then event_epoch end) over (
            partition by account, external_number
            order by event_epoch nulls first, event_order nulls first, call_key nulls first
            rows between current row and unbounded following
        ) as callback_epoch
    from timeline
),

matched as (
    -- the contact at that second (the smallest call_key if several)
    select
        next_contact.account,
        next_contact.missed_call_key,
        contacts.call_key as callback_call_key,
        contacts.call_date as callback_date,
        contacts.started_at_utc as callback_at_utc,
        contacts.start_epoch - next_contact.missed_end_epoch as time_to_callback_seconds,
        case when contacts.direction = 'outbound' then 'callback' else 'retry' end
            as callback_type,
        contacts.is_answered as is_callback_answered,
        contacts.user_id as callback_user_id,
        row_number() over (
            partition by next_contact.account, next_contact.missed_call_key
            order by contacts.call_key
        ) as contact_rank
    from next_contact
    inner join contacts
        on contacts.account = next_contact.account
        and contacts.external_number = next_contact.external_number
        and contacts.start_epoch = next_contact.callback_epoch
    where
        next_contact.event = 'missed'
        and next_contact.callback_epoch - next_contact.missed_end_epoch <= 86400
),

final as (
    select
        missed.account,
        missed.call_key as missed_call_key,
        missed.call_date as missed_date,
        missed.started_at_utc as missed_at_utc,
        missed.started_at_local as missed_at_local,
        missed.ended_at_utc as missed_ended_at_utc,
        cast(to_timestamp(missed.end_epoch) at time zone {{ reporting_timezone }} as date)
            as missed_ended_date,
        missed.external_number,
        missed.is_abandoned,
        missed.is_business_hours,
        matched.callback_call_key,
        matched.callback_type,
        matched.callback_date,
        matched.callback_at_utc,
        matched.callback_user_id,
        matched.is_callback_answered,
        matched.time_to_callback_seconds,
        case
            when matched.time_to_callback_seconds <= 3600 then true
            when horizon.data_horizon_epoch - missed.end_epoch >= 3600 then false
        end as called_back_within_1h,
        case
            when matched.time_to_callback_seconds <= 14400 then true
            when horizon.data_horizon_epoch - missed.end_epoch >= 14400 then false
        end as called_back_within_4h,
        case
            when matched.time_to_callback_seconds <= 86400 then true
            when horizon.data_horizon_epoch - missed.end_epoch >= 86400 then false
        end as called_back_within_24h,
        horizon.data_horizon_epoch - missed.end_epoch >= 3600 as callback_window_closed_1h,
        horizon.data_horizon_epoch - missed.end_epoch >= 14400 as callback_window_closed_4h,
        horizon.data_horizon_epoch - missed.end_epoch >= 86400 as callback_window_closed_24h,
        not coalesce(matched.time_to_callback_seconds <= 86400, false)
        and horizon.data_horizon_epoch - missed.end_epoch < 86400 as is_too_recent
    from missed
    inner join horizon on horizon.account = missed.account
    left join matched
        on matched.account = missed.account
        and matched.missed_call_key = missed.call_key
        and matched.contact_rank = 1
)

select * from final
