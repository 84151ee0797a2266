-- test: no CDR talks longer than it lasts (billsec <= duration), and no negative times
select account, cdr_id, duration_seconds, talk_seconds
from stg_voipstudio__cdrs
where talk_seconds > duration_seconds or talk_seconds < 0 or duration_seconds < 0
