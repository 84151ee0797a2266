-- grain: one row per account and SMS message; key: (account, sms_id)
-- incremental: key (account, sms_id)
--   voipstudio.sms: (account, id)
--
-- The loaded SMS (/sms, loaded when the resources setting or --resources names sms), renamed;
-- messages `voipstudio reconcile` marked deleted are left out. Numbers are digits without '+'
-- as the API writes them [doc].
--
--   account          the VoIPstudio account the message was synced from
--   sent_at_utc      when the message was written (created_at), a wall-clock TIMESTAMP in UTC
--   sent_at_local    the same instant on the wall clock of the reporting time zone
--   local_date       the date of sent_at_local
--   from_number,     sender and recipient as sent (digits)
--   to_number
--   direction        outbound (type O: sent by a user), inbound (I: received) or unknown
--   user_id          the VoIPstudio user who sent or received it
--   result           the delivery result as the API gives it (DELIVERED, SENT, FAILED,
--                    RECEIVED, ...)
--   is_failed        result is FAILED
--   message_text     the message
--   message_length   characters of the message (0 when empty)
with source as (
    select * from voipstudio.sms
    where deleted_at is null
),

renamed as (
    select
        account,
        id as sms_id,
        created_at at time zone 'UTC' as sent_at_utc,
        created_at at time zone {{ reporting_timezone }} as sent_at_local,
        cast(created_at at time zone {{ reporting_timezone }} as date) as local_date,
        "from" as from_number,
        "to" as to_number,
        case type when 'O' then 'outbound' when 'I' then 'inbound' else 'unknown' end
            as direction,
        user_id,
        result,
        coalesce(upper(result) = 'FAILED', false) as is_failed,
        message as message_text,
        coalesce(length(message), 0) as message_length
    from source
)

select * from renamed
