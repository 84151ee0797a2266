-- grain: one row per account and conversation; key: (account, conversation_id)
-- incremental: key (account, conversation_id)
--   voipstudio.conversations: (account, id)
--
-- The loaded conversations (/conversations, loaded when the resources setting or --resources
-- names conversations), renamed; conversations `voipstudio reconcile` marked deleted are left
-- out. A conversation is a thread of one channel (sms, chat, ...) [code: the fields; what
-- makes a thread is the API's].
--
--   account           the VoIPstudio account the conversation was synced from
--   started_at_utc    when it started (created_at), a wall-clock TIMESTAMP in UTC
--   started_at_local  the same instant on the wall clock of the reporting time zone
--   local_date        the date of started_at_local
--   channel           sms, chat, ... as the API gives it
--   src, dst          who started it and the other party, as the API gives them
--   direction         outbound (type O), inbound (I) or unknown
--   duration_seconds  first to last message (0 when unknown)
with source as (
    select * from voipstudio.conversations
    where deleted_at is null
),

renamed as (
    select
        account,
        id as conversation_id,
        created_at at time zone 'UTC' as started_at_utc,
        created_at at time zone {{ reporting_timezone }} as started_at_local,
        cast(created_at at time zone {{ reporting_timezone }} as date) as local_date,
        channel,
        src,
        dst,
        case type when 'O' then 'outbound' when 'I' then 'inbound' else 'unknown' end
            as direction,
        coalesce(duration, 0) as duration_seconds
    from source
)

select * from renamed
