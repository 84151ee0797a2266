-- grain: one row per account and call queue; key: (account, queue_id)
-- incremental: key (account, queue_id)
--
-- The queues table as loaded (replaced in full by every sync), renamed. Members are in
-- stg_voipstudio__queue_members.
with source as (
    select * from voipstudio.queues
),

renamed as (
    select
        account,
        id as queue_id,
        name as queue_name,
        number as queue_number,
        ring_strategy,
        ring_time as ring_time_seconds,
        skip_busy as is_skip_busy
    from source
)

select * from renamed
