-- grain: one row per account and CDR (one leg of a call); key: (account, cdr_id)
-- incremental: key (account, cdr_id)
--   voipstudio.cdrs: (account, id)
-- optional column: voipstudio.cdrs.deleted_at timestamp with time zone
--
-- The loaded CDRs, typed and renamed. CDRs that `voipstudio reconcile` marked deleted (the API no
-- longer returns them: deleted_at is set) are left out; nothing else is.
--
-- A table kept up to date row by row: after a sync only the CDRs loaded or merged since the
-- last build are read again, and only those whose row here changed are written (see
-- docs/models.md, "Incremental builds").
--
--   account          the VoIPstudio account the CDR was synced from. CDR ids, call ids and user
--                    ids are only unique within one account, so every key, join and group by
--                    downstream includes it.
--   call_key         call_id, or -id when call_id is null (the legs of one account sharing a
--                    call_key are one call; a negative key can never collide with a real call_id)
--   calldate_utc     the leg's start as a wall-clock TIMESTAMP in UTC (no time zone attached)
--   calldate_local   the same instant on the wall clock of the reporting time zone
--   local_date       the date of calldate_local
--   start_epoch      Unix seconds of the start;
--                    end_epoch = start_epoch + ring_seconds + talk_seconds.
--                    All interval arithmetic (durations, overlaps) uses these integers.
--   direction        'internal' when src_id and dst_id are both set (both ends are users);
--                    otherwise from type: I 'inbound', O 'outbound', M 'missed', else 'unknown'
--   talk_seconds     billsec (0 when null)
--   ring_seconds     duration - billsec, never below 0: ring / set-up time before answer or hang-up
--   is_answered      disposition = 'CONNECTED' and billsec > 0
--   answered_epoch   start_epoch + ring_seconds, when is_answered
--   src_clean, dst_clean
--                    src and dst as written, trimmed, with spaces and the separators - ( ) . /
--                    removed (null when missing): the one home of that cleaning, which
--                    stg_voipstudio__monitors and stg_voipstudio__voicemessages apply to their
--                    numbers too; fct_calls matches recordings and messages on them
--   src_number, dst_number
--                    the number with separators ( ) - . / and spaces removed: '+' and digits
--                    (E.164) when it carries a country code ('+' or '00' prefix) or when it is a
--                    national number of 7+ digits and default_country_code is set (its
--                    trunk_prefix is dropped); digits only otherwise (extensions, short codes);
--                    null when it is not a number (anonymous, unavailable)
--   external_number  the outside party: src_number of inbound and missed legs, dst_number of
--                    outbound legs, null for internal and unknown legs
--   is_ring_no_answer
--                    the leg rang its user (inbound or missed), was not answered, and was not
--                    cut by a colleague answering (hang-up cause not Q.850 26): the leg of a
--                    RONA (agg_user_daily, agg_agent_daily); where t_cause is empty every
--                    unanswered ringing leg is one
--   is_answered_elsewhere
--                    the leg rang, was not answered, and ended with Q.850 26 (non-selected user
--                    clearing: a colleague answered while it rang, as in a ring-all queue).
--                    The one home of both definitions.
--   queue_name       the queue (or ring group) whose leg this is: destination, on a leg whose
--                    context is 'from-queue'; null otherwise. [guess] This is how the emulator
--                    names a CDR's queue (pipelines/emulator/cdr_conventions.py); no document
--                    says how the live API does. It is the one place the models read it:
--                    fct_calls and the queue marts take the queue from this column only.
with source as (
    select * from voipstudio.cdrs
    where deleted_at is null
),

cleaned as (
    select
        source.*,
        replace(replace(replace(replace(replace(replace(
            trim(src), ' ', ''), '-', ''), '(', ''), ')', ''), '.', ''), '/', '') as src_clean,
        replace(replace(replace(replace(replace(replace(
            trim(dst), ' ', ''), '-', ''), '(', ''), ')', ''), '.', ''), '/', '') as dst_clean,
        coalesce(billsec, 0) as talk_seconds_raw,
        coalesce(duration, 0) as duration_raw
    from source
),

renamed as (
    select
        account,
        id as cdr_id,
        coalesce(call_id, -id) as call_key,
        call_id,
        live_id,
        parent_live_id,
        user_id,
        sip_endpoint_id,
        server_id,
        upper(trim(type)) as cdr_type,
        case
            when nullif(trim(src_id), '') is not null and nullif(trim(dst_id), '') is not null
                then 'internal'
            when upper(trim(type)) = 'I' then 'inbound'
            when upper(trim(type)) = 'O' then 'outbound'
            when upper(trim(type)) = 'M' then 'missed'
            else 'unknown'
        end as direction,
        calldate at time zone 'UTC' as calldate_utc,
        calldate at time zone {{ reporting_timezone }} as calldate_local,
        cast(calldate at time zone {{ reporting_timezone }} as date) as local_date,
        cast(epoch(calldate) as bigint) as start_epoch,
        duration_raw as duration_seconds,
        talk_seconds_raw as talk_seconds,
        case
            when duration_raw > talk_seconds_raw then duration_raw - talk_seconds_raw
            else 0
        end as ring_seconds,
        upper(trim(disposition)) as disposition,
        upper(trim(disposition)) = 'CONNECTED' and talk_seconds_raw > 0 as is_answered,
        t_cause as hangup_cause,
        clid as caller_id,
        src as src_raw,
        src_clean,
        case
            when src_clean like '+%' and regexp_matches(substr(src_clean, 2), '^[0-9]+$')
                then src_clean
            when src_clean like '00%' and regexp_matches(src_clean, '^[0-9]+$')
                and length(src_clean) > 4
                then '+' || substr(src_clean, 3)
            when regexp_matches(src_clean, '^[0-9]+$') and length(src_clean) >= 7
                and {{ default_country_code }} <> ''
                then '+' || {{ default_country_code }} || case
                    when {{ trunk_prefix }} <> '' and src_clean like {{ trunk_prefix }} || '%'
                        then substr(src_clean, length({{ trunk_prefix }}) + 1)
                    else src_clean
                end
            when regexp_matches(src_clean, '^[0-9]+$') then src_clean
        end as src_number,
        case
            when regexp_matches(trim(src_id), '^[0-9]+$') then cast(trim(src_id) as bigint)
        end as src_user_id,
        src_name,
        src_ua as src_user_agent,
        src_codec,
        dst as dst_raw,
        dst_clean,
        case
            when dst_clean like '+%' and regexp_matches(substr(dst_clean, 2), '^[0-9]+$')
                then dst_clean
            when dst_clean like '00%' and regexp_matches(dst_clean, '^[0-9]+$')
                and length(dst_clean) > 4
                then '+' || substr(dst_clean, 3)
            when regexp_matches(dst_clean, '^[0-9]+$') and length(dst_clean) >= 7
                and {{ default_country_code }} <> ''
                then '+' || {{ default_country_code }} || case
                    when {{ trunk_prefix }} <> '' and dst_clean like {{ trunk_prefix }} || '%'
                        then substr(dst_clean, length({{ trunk_prefix }}) + 1)
                    else dst_clean
                end
            when regexp_matches(dst_clean, '^[0-9]+$') then dst_clean
        end as dst_number,
        case
            when regexp_matches(trim(dst_id), '^[0-9]+$') then cast(trim(dst_id) as bigint)
        end as dst_user_id,
        dst_name,
        dst_ua as dst_user_agent,
        dst_codec,
        destination,
        context,
        rate,
        charge,
        info,
        metadata,
        labels,
        nb_notes as note_count
    from cleaned
),

final as (
    select
        renamed.*,
        start_epoch + ring_seconds + talk_seconds as end_epoch,
        case when is_answered then start_epoch + ring_seconds end as answered_epoch,
        case
            when direction in ('inbound', 'missed') then src_number
            when direction = 'outbound' then dst_number
        end as external_number,
        case
            when lower(trim(context)) = 'from-queue' then nullif(trim(destination), '')
        end as queue_name,
        direction in ('inbound', 'missed') and not is_answered
        and coalesce(trim(cast(hangup_cause as varchar)), '') <> '26' as is_ring_no_answer,
        direction in ('inbound', 'missed') and not is_answered
        and coalesce(trim(cast(hangup_cause as varchar)), '') = '26' as is_answered_elsewhere
    from renamed
)

select * from final
