-- grain: one row per account and queue name; key: (account, queue_name)
-- incremental: key (account, queue_name)
--
-- The queue a CDR means by the name it carries: the one home of the name -> id mapping that
-- fct_calls, fct_queue_calls and agg_agent_daily read. A CDR names its queue, never its id
-- (stg_voipstudio__cdrs.queue_name, itself a [guess] about the live API), so the id is the
-- loaded queue of that name within the account: the smallest id when two queues share a name.
-- A name no loaded queue has (a queue renamed or deleted since the call) has no row here, and
-- the calls naming it have a null queue_id.
--   queue_count   how many loaded queues have the name (more than 1: the id is ambiguous)
with source as (
    select * from voipstudio.queues
),

named as (
    select
        account,
        name as queue_name,
        min(id) as queue_id,
        count(*) as queue_count
    from source
    where name is not null
    group by account, name
)

select * from named
