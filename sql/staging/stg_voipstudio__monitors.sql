-- grain: one row per account and call recording; key: (account, recording_id)
-- incremental: key (account, recording_id)
--   voipstudio.monitors: (account, id)
--
-- The loaded call recordings (/monitors, loaded when the resources setting or --resources
-- names monitors), renamed; recordings `voipstudio reconcile` marked deleted are left out. The
-- audio itself is not loaded: `voipstudio download recordings` fetches it from file_route.
-- A recording's record says when the recorded leg started and how long it was talked; it names
-- no CDR id [code: the live record's fields as known], so a call is matched to its recording
-- by (caller, called, start) (see docs/collections.md).
--
--   account          the VoIPstudio account the recording was synced from
--   started_at_utc   when the recorded leg started (timestamp), a wall-clock TIMESTAMP in UTC
--   started_at_local the same instant on the wall clock of the reporting time zone
--   local_date       the date of started_at_local
--   start_epoch      Unix seconds of timestamp; end_epoch = start_epoch + duration_seconds
--   duration_seconds the recorded talk time (0 when unknown)
--   caller_clean,    caller and called trimmed, with spaces and the separators ( ) - . /
--   called_clean     removed, as stg_voipstudio__cdrs.src_clean (null when missing)
--   caller_number,   the same; null when they hold anything but '+' and digits
--   called_number
--   direction        inbound (type I), outbound (O) or unknown
--   file_size_bytes  the audio file's size in bytes as the record gives it (size)
--   file_route       the API path of the audio file (/monitors/<id>.mp3)
with source as (
    select * from voipstudio.monitors
    where deleted_at is null
),

renamed as (
    select
        account,
        id as recording_id,
        "timestamp" at time zone 'UTC' as started_at_utc,
        "timestamp" at time zone {{ reporting_timezone }} as started_at_local,
        cast("timestamp" at time zone {{ reporting_timezone }} as date) as local_date,
        cast(epoch("timestamp") as bigint) as start_epoch,
        coalesce(duration, 0) as duration_seconds,
        replace(replace(replace(replace(replace(replace(
            trim(caller), ' ', ''), '-', ''), '(', ''), ')', ''), '.', ''), '/', '')
            as caller_clean,
        replace(replace(replace(replace(replace(replace(
            trim(called), ' ', ''), '-', ''), '(', ''), ')', ''), '.', ''), '/', '')
            as called_clean,
        caller as caller_raw,
        called as called_raw,
        case type when 'I' then 'inbound' when 'O' then 'outbound' else 'unknown' end
            as direction,
        size as file_size_bytes,
        '/monitors/' || cast(id as varchar) || '.mp3' as file_route
    from source
),

final as (
    select
        account,
        recording_id,
        started_at_utc,
        started_at_local,
        local_date,
        start_epoch,
        start_epoch + duration_seconds as end_epoch,
        duration_seconds,
        caller_raw,
        caller_clean,
        case
            when regexp_matches(caller_clean, '^\+?[0-9]+$') then caller_clean
        end as caller_number,
        called_raw,
        called_clean,
        case
            when regexp_matches(called_clean, '^\+?[0-9]+$') then called_clean
        end as called_number,
        direction,
        file_size_bytes,
        file_route
    from renamed
)

select * from final
