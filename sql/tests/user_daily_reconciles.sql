-- test: agg_user_daily agrees, per account, with the legs and the callbacks: talk of users'
-- legs, callbacks made; each user's misses are RONA or answered elsewhere, never both
with legs as (
    select account, sum(talk_seconds) as talk_seconds
    from stg_voipstudio__cdrs
    where user_id is not null
    group by account
),

users as (
    select
        account,
        sum(talk_seconds) as talk_seconds,
        sum(callbacks_made) as callbacks_made,
        count(case when missed_calls <> rona_calls + answered_elsewhere_calls then 1 end)
            as split_mismatches
    from agg_user_daily
    group by account
),

callbacks as (
    select account, count(distinct callback_call_key) as callbacks
    from fct_missed_call_callbacks
    where callback_type = 'callback'
    group by account
),

accounts as (
    select account from legs
    union
    select account from users
    union
    select account from callbacks
)

select
    accounts.account,
    legs.talk_seconds as leg_talk_seconds,
    users.talk_seconds as user_talk_seconds,
    callbacks.callbacks,
    users.callbacks_made
from accounts
left join legs on legs.account = accounts.account
left join users on users.account = accounts.account
left join callbacks on callbacks.account = accounts.account
where
    coalesce(legs.talk_seconds, 0) <> coalesce(users.talk_seconds, 0)
    or coalesce(callbacks.callbacks, 0) <> coalesce(users.callbacks_made, 0)
    or users.split_mismatches > 0
