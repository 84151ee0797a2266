-- test: the call flags imply each other as documented (short abandon => abandoned => missed =>
-- inbound and not answered; answered within SL => answered inbound; offered = answered or
-- abandoned inbound) and times are not negative
select account, call_key, direction, outcome, is_answered, is_missed, is_abandoned, is_short_abandon
from fct_calls
where
    (is_short_abandon and not is_abandoned)
    or (is_abandoned and not is_missed)
    or (is_missed and (direction <> 'inbound' or is_answered))
    or (is_answered_within_sl and not (is_answered and direction = 'inbound'))
    or (is_offered <> (direction = 'inbound' and (is_answered or is_abandoned)))
    or (is_answered <> (outcome = 'answered'))
    or wait_seconds < 0
    or duration_seconds < 0
    or wait_seconds > duration_seconds
    or (is_answered and answered_epoch is null)
