-- grain: one row per account and queue group; key: (account, queuegroup_id)
-- incremental: key (account, queuegroup_id)
--
-- The queuegroups table as loaded (/queuegroups, replaced in full by every sync that loads it:
-- loaded when the resources setting or --resources names queuegroups), renamed. Which queues
-- belong to a group is not known from the API [doc: id and name only].
with source as (
    select * from voipstudio.queuegroups
),

renamed as (
    select
        account,
        id as queuegroup_id,
        name as queuegroup_name
    from source
)

select * from renamed
