-- grain: one row per account, queue, member user and membership as observed (a user who left a
-- queue and joined it again has two rows); key: (account, queue_id, user_id, valid_from_utc)
-- incremental: key (account, queue_id, user_id, valid_from_utc)
--
-- The queues' memberships as the syncs observed them (raw table queue_memberships, kept by dlt's
-- scd2 merge from the members of each sync's /queues read: pipelines/voipstudio/memberships.py).
-- The API gives the current members only, so this history starts at the first sync that kept
-- it, and a change is seen when the next sync runs: it happened between the last sync that
-- saw the old membership and valid_from.
--   valid_from_utc   the sync (its load package's time, UTC) that first saw the user in the
--                    queue; valid_from_epoch the same in Unix seconds
--   valid_to_utc     the first sync that no longer saw them (null: a member as of the last
--                    sync); valid_to_epoch the same in Unix seconds
--   is_current       valid_to_utc is null
-- The raw table's rows with a null queue or user (a queue observed without members, an account
-- without queues: they let the merge close memberships) are left out.
with source as (
    select * from voipstudio.queue_memberships
),

renamed as (
    select
        account,
        queue_id,
        user_id,
        _dlt_valid_from at time zone 'UTC' as valid_from_utc,
        _dlt_valid_to at time zone 'UTC' as valid_to_utc,
        cast(epoch(_dlt_valid_from) as bigint) as valid_from_epoch,
        cast(epoch(_dlt_valid_to) as bigint) as valid_to_epoch,
        _dlt_valid_to is null as is_current
    from source
    where queue_id is not null and user_id is not null
)

select * from renamed
