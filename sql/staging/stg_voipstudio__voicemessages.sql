-- grain: one row per account and voicemail message; key: (account, voicemail_id)
-- incremental: key (account, voicemail_id)
--   voipstudio.voicemessages: (account, id)
-- optional column: voipstudio.voicemessages.deleted_at timestamp with time zone
--
-- The loaded voicemail messages (/voicemessages, loaded when the resources setting or
-- --resources names voicemessages), renamed; messages `voipstudio reconcile` marked deleted
-- are left out. A message is left after a missed call: its start is the end of that call.
-- Kept up to date row by row, like stg_voipstudio__cdrs: a mart that flags calls that went to
-- voicemail sees exactly the messages a sync loaded or reconcile changed.
--
--   account          the VoIPstudio account the message was synced from (ids are only unique
--                    within one account)
--   left_at_utc      when the caller started speaking (origtime), a wall-clock TIMESTAMP in UTC
--   left_at_local    the same instant on the wall clock of the reporting time zone
--   local_date       the date of left_at_local
--   start_epoch      Unix seconds of origtime; end_epoch = start_epoch + duration_seconds
--   duration_seconds the message's length (0 when unknown)
--   caller_clean     caller trimmed, with spaces and the separators ( ) - . / removed, as
--                    stg_voipstudio__cdrs.src_clean (null when missing)
--   caller_number    the same; null when it holds anything but '+' and digits (anonymous,
--                    unavailable)
--   mailbox          dialled: the extension of the user or the number of the queue whose
--                    mailbox got the message
--   folder           INBOX (not listened to yet) or another folder (Old, ...)
--   is_new           not listened to yet
with source as (
    select * from voipstudio.voicemessages
    where deleted_at is null
),

renamed as (
    select
        account,
        id as voicemail_id,
        origtime at time zone 'UTC' as left_at_utc,
        origtime at time zone {{ reporting_timezone }} as left_at_local,
        cast(origtime at time zone {{ reporting_timezone }} as date) as local_date,
        cast(epoch(origtime) as bigint) as start_epoch,
        coalesce(duration, 0) as duration_seconds,
        caller as caller_raw,
        replace(replace(replace(replace(replace(replace(
            trim(caller), ' ', ''), '-', ''), '(', ''), ')', ''), '.', ''), '/', '')
            as caller_clean,
        dialled as mailbox,
        folder,
        is_new
    from source
),

final as (
    select
        account,
        voicemail_id,
        left_at_utc,
        left_at_local,
        local_date,
        start_epoch,
        start_epoch + duration_seconds as end_epoch,
        duration_seconds,
        caller_raw,
        caller_clean,
        case
            when regexp_matches(caller_clean, '^\+?[0-9]+$') then caller_clean
        end as caller_number,
        mailbox,
        folder,
        is_new
    from renamed
)

select * from final
