-- grain: one row per account, queue and member user; key: (account, queue_id, user_id)
-- incremental: key (account, queue_id, user_id)
--
-- The queues' member lists (dlt child table queues__users: value = user id, _dlt_parent_id =
-- the queue row's _dlt_id). member_position is the user's place in the queue's list, from 0.
-- The child table has no account column: the member takes its queue's account (user_id is a
-- user of that same account).
with queues as (
    select * from voipstudio.queues
),

members as (
    select * from voipstudio.queues__users
),

joined as (
    select
        queues.account,
        queues.id as queue_id,
        members.value as user_id,
        members._dlt_list_idx as member_position
    from members
    inner join queues on queues._dlt_id = members._dlt_parent_id
)

select * from joined
