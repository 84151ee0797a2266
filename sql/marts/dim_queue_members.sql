-- grain: one row per account, queue, member user and membership period as observed by the
-- syncs; key: (account, queue_id, user_id, valid_from_utc)
-- optional input: stg_voipstudio__users (account varchar, user_id bigint, full_name varchar)
--
-- Who was in each queue when: the API gives a queue's current members only, so every sync
-- keeps what it saw (stg_voipstudio__queue_memberships) and this is that history, with names.
-- A sync that saw the same members adds nothing; a member who left and came back has two rows.
-- To find the members of a queue at an instant t: valid_from_utc <= t and (valid_to_utc > t or
-- valid_to_utc is null). The history starts at the first sync that kept it (the first after
-- upgrading, for a dataset loaded before): earlier calls have no membership to join.
--
--   queue_name        the queue's name as loaded now (null: the queue no longer exists)
--   user_name         the user's full name as loaded now (null: users not loaded, or gone)
--   valid_from_utc    the first sync that saw the user in the queue (the change happened
--                     between the sync before it and this one); valid_from_epoch in seconds
--   valid_to_utc      the first sync that no longer saw them; null while they are a member
--                     (valid_to_epoch in seconds)
--   is_current        a member as of the last sync
--   observed_seconds  valid_to_epoch - valid_from_epoch: how long the membership was seen
--                     (null while current)
with memberships as (
    select * from stg_voipstudio__queue_memberships
),

queues as (
    select account, queue_id, queue_name from stg_voipstudio__queues
),

users as (
    select account, user_id, full_name from stg_voipstudio__users
    where account is not null
),

final as (
    select
        memberships.account,
        memberships.queue_id,
        queues.queue_name,
        memberships.user_id,
        users.full_name as user_name,
        memberships.valid_from_utc,
        memberships.valid_to_utc,
        memberships.valid_from_epoch,
        memberships.valid_to_epoch,
        memberships.is_current,
        memberships.valid_to_epoch - memberships.valid_from_epoch as observed_seconds
    from memberships
    left join queues
        on queues.account = memberships.account and queues.queue_id = memberships.queue_id
    left join users
        on users.account = memberships.account and users.user_id = memberships.user_id
)

select * from final
