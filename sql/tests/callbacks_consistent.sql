-- test: every missed external inbound call has one callbacks row; a callback is a call of the
-- missed call's own account, later than the miss, from the same number; the window flags agree
-- with time_to_callback_seconds
with missed as (
    select account, call_key, external_number from fct_calls
    where is_missed and external_number is not null
)

select
    coalesce(missed.account, callbacks.account) as account,
    coalesce(missed.call_key, callbacks.missed_call_key) as missed_call_key,
    'missing or extra row' as problem
from missed
full outer join fct_missed_call_callbacks as callbacks
    on callbacks.account = missed.account and callbacks.missed_call_key = missed.call_key
where missed.call_key is null or callbacks.missed_call_key is null
union all
select
    callbacks.account,
    callbacks.missed_call_key,
    'callback before the miss ended, from another number, or not a call of the account'
from fct_missed_call_callbacks as callbacks
left join fct_calls as contact
    on contact.account = callbacks.account and contact.call_key = callbacks.callback_call_key
where
    callbacks.callback_call_key is not null
    and (
        contact.call_key is null
        or callbacks.time_to_callback_seconds < 0
        or contact.external_number <> callbacks.external_number
    )
union all
select account, missed_call_key, 'window flags disagree'
from fct_missed_call_callbacks
where
    (called_back_within_1h and not called_back_within_4h)
    or (called_back_within_4h and not called_back_within_24h)
    or (
        called_back_within_24h
        and (time_to_callback_seconds is null or time_to_callback_seconds > 86400)
    )
    or (called_back_within_1h = false and time_to_callback_seconds <= 3600)
    or (is_too_recent <> (called_back_within_24h is null))
    or (callback_window_closed_24h and not callback_window_closed_4h)
    or (callback_window_closed_4h and not callback_window_closed_1h)
    or (callback_window_closed_1h and called_back_within_1h is null)
    or (not callback_window_closed_1h and called_back_within_1h = false)
