-- test: agg_user_daily agrees with the legs and the callbacks: talk of users' legs, handled
-- and missed calls, callbacks made
with legs as (
    select sum(talk_seconds) as talk_seconds
    from stg_voipstudio__cdrs
    where user_id is not null
),

users as (
    select
        sum(talk_seconds) as talk_seconds,
        sum(callbacks_made) as callbacks_made,
        sum(missed_unanswered_calls) as missed_unanswered_calls
    from agg_user_daily
),

callbacks as (
    select count(distinct callback_call_key) as callbacks
    from fct_missed_call_callbacks
    where callback_type = 'outbound'
)

select
    legs.talk_seconds as leg_talk_seconds,
    users.talk_seconds as user_talk_seconds,
    callbacks.callbacks,
    users.callbacks_made
from legs
cross join users
cross join callbacks
where
    coalesce(legs.talk_seconds, 0) <> coalesce(users.talk_seconds, 0)
    or coalesce(callbacks.callbacks, 0) <> coalesce(users.callbacks_made, 0)
