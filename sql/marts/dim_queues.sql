-- grain: one row per account and call queue as loaded by the last sync; key: (account, queue_id)
-- optional input: stg_voipstudio__queue_memberships (account varchar, queue_id bigint, user_id bigint, valid_from_utc timestamp, valid_to_utc timestamp, is_current boolean)
--
-- The queues with their settings and their members' history in brief (the members, period by
-- period, are in dim_queue_members). The queue of a call is matched by name
-- (stg_voipstudio__queue_names: fct_calls.queue_id, fct_queue_calls.queue_id).
--
--   member_count            members as of the last sync (the history's current memberships);
--                           null until a sync kept the history (a dataset loaded before it)
--   past_member_count       users seen in the queue before who are not members now
--   history_since_utc       the first sync that saw a member of the queue: the history starts
--                           there (null: no member ever seen, or no history yet)
--   last_member_change_utc  the latest sync that saw a member join or leave
--   is_name_ambiguous       another queue of the account has the same name: calls, which name
--                           their queue, are given the smallest id of the two
with queues as (
    select * from stg_voipstudio__queues
),

names as (
    select account, queue_name, queue_count from stg_voipstudio__queue_names
),

loaded as (
    select not exists (
        select 1 from stg_voipstudio__queue_memberships where account is null
    ) as history_loaded
),

history as (
    select
        account,
        queue_id,
        count(distinct case when is_current then user_id end) as member_count,
        count(distinct user_id) as seen_member_count,
        min(valid_from_utc) as history_since_utc,
        max(coalesce(valid_to_utc, valid_from_utc)) as last_member_change_utc
    from stg_voipstudio__queue_memberships
    where account is not null
    group by account, queue_id
),

final as (
    select
        queues.account,
        queues.queue_id,
        queues.queue_name,
        queues.queue_number,
        queues.ring_strategy,
        queues.ring_time_seconds,
        queues.is_skip_busy,
        case when loaded.history_loaded then coalesce(history.member_count, 0) end
            as member_count,
        case
            when loaded.history_loaded
                then coalesce(history.seen_member_count - history.member_count, 0)
        end as past_member_count,
        history.history_since_utc,
        history.last_member_change_utc,
        coalesce(names.queue_count, 1) > 1 as is_name_ambiguous
    from queues
    cross join loaded
    left join history
        on history.account = queues.account and history.queue_id = queues.queue_id
    left join names
        on names.account = queues.account and names.queue_name = queues.queue_name
)

select * from final
