-- grain: one row per account and call (all CDR legs of the account sharing call_key);
-- key: (account, call_key)
-- incremental: partition (account, call_key)
--   stg_voipstudio__monitors: rows where this.account = stg_voipstudio__monitors.account and stg_voipstudio__monitors.start_epoch between this.start_epoch and this.end_epoch
--   stg_voipstudio__voicemessages: rows where this.account = stg_voipstudio__voicemessages.account and this.end_epoch between stg_voipstudio__voicemessages.start_epoch - 60 and stg_voipstudio__voicemessages.start_epoch
--   stg_voipstudio__queue_names: rows where this.account = stg_voipstudio__queue_names.account and this.queue_name = stg_voipstudio__queue_names.queue_name
-- optional input: stg_voipstudio__queue_names (account varchar, queue_name varchar, queue_id bigint)
-- optional input: stg_voipstudio__monitors (account varchar, start_epoch bigint, caller_clean varchar, called_clean varchar)
-- optional input: stg_voipstudio__voicemessages (account varchar, voicemail_id bigint, start_epoch bigint, caller_clean varchar)
--
-- Rebuilt call by call: after a sync, the calls with a CDR loaded, changed or marked deleted
-- since the last build (the call a CDR belonged to before, too, when its call_id changed).
--
-- A call is every leg of one account with the same call_id (a leg without call_id is a call of
-- its own). call_ids are only unique within an account: two accounts' legs with the same call_id
-- are two calls, and so are their users (user ids below are ids of the call's account). It
-- is attributed to the day of its start in the reporting time zone, even when it ends the next
-- day (agg_traffic_hourly splits its traffic by the hours it actually covers).
--
--   direction          'inbound' if any leg is inbound or missed (an outside caller),
--                      else 'outbound' if any leg is outbound, else 'internal' if any leg is
--                      internal (both ends users), else 'unknown'
--   start_epoch        earliest leg start; end_epoch = latest leg end (Unix seconds)
--   duration_seconds   end_epoch - start_epoch
--   is_answered        some leg has disposition CONNECTED and billsec > 0
--   answered_epoch     earliest answer of any leg (leg start + its ring_seconds)
--   wait_seconds       answered: answered_epoch - start_epoch (time to answer, queue time
--                      included); not answered: duration_seconds (time until the caller gave up)
--   talk_seconds       seconds in which at least one leg was talking: the union of the legs'
--                      talk intervals [start + ring_seconds, + billsec). A transferred call's
--                      two conversations add up; a call forwarded to a mobile, whose inbound and
--                      outbound legs carry the same conversation at once, counts it once.
--   leg_talk_seconds   sum of billsec over all legs (channel time in conversation: the legs
--                      of a forwarded call each hold a channel)
--   forward legs       the outbound legs of an inbound call (the PBX dialling a user's mobile
--                      for a call forwarded to it). They are charged as outbound calls of
--                      their own destination: their cost stays with them, not with the call's.
--   cost               sum of charge over the legs that are not forward legs (0 when null),
--                      DECIMAL(18, 6): exact and the same on every rebuild, unlike summed
--                      floating point
--   forward_leg_count, forward_cost, forward_talk_seconds (union of their talk),
--   forward_destination (first non-null), is_forward_answered
--                      the call's forward legs; agg_destination_monthly books them as outbound
--                      attempts to forward_destination
--   own_talk_seconds   the union of the talk of the other legs (talk_seconds when there is no
--                      forward leg)
--   outcome            'answered'; else 'no_answer' if a leg ended NO ANSWER; else 'busy' if a
--                      leg ended BUSY; else 'failed' if a leg ended FAILED; else 'other'
--   is_rejected        not answered, no leg ended NO ANSWER or BUSY, and a leg's hang-up cause
--                      (t_cause) is Q.850 21 "call rejected": a terminal rejection (the called
--                      party's phone or network declined it)
--   is_missed          inbound and not answered, whatever the reason
--   is_abandoned       missed and outcome not busy/failed: it was offered (rang) and the caller
--                      hung up (or the ring timed out) before anyone answered
--   is_short_abandon   abandoned and wait_seconds <= short_abandon_seconds
--                      (here {{ short_abandon_seconds }})
--   is_offered         inbound and (answered or abandoned); busy and failed calls never rang
--   is_answered_within_sl
--                      inbound, answered and wait_seconds <= service_level_seconds
--                      (here {{ service_level_seconds }})
--   is_network_effective
--                      outcome answered, no_answer or busy, or is_rejected: the network
--                      delivered the call and the user's side decided (ITU-T E.425: answer,
--                      user busy, ring no answer, terminal rejection; the NER numerator)
--   answering_user_id  inbound: the user of the first answered leg; internal: the called user
--                      (dst_id) of the first answered leg; outbound: null
--   calling_user_id    outbound and internal: the user who placed the call (first leg's src_id,
--                      else its user_id); inbound: null
--   external_number    the outside party's normalized number (first leg that has one)
--   destination        the first non-null destination of the legs other than forward legs (the
--                      rated destination of an outbound call; for inbound calls whatever the
--                      API puts there, e.g. the queue's name)
--   is_transferred     more than one user answered a leg of the call
--   was_recorded       a recording (stg_voipstudio__monitors) is of one of the call's legs: same
--                      account, same start (timestamp = the leg's calldate), same caller and
--                      called (src and dst, compared without spaces and - ( ) . /) [guess: a
--                      recording names no CDR; this join is the one place the mapping lives].
--                      NULL when recordings were never loaded (monitors is not in resources)
--   went_to_voicemail  inbound and missed, and a voicemail message (stg_voipstudio__voicemessages)
--                      from the caller of one of its legs (src, compared the same way)
--                      started between the call's end and 60 s after it [guess: the emulator
--                      starts the message at the call's end]. NULL when voicemail was never
--                      loaded (voicemessages is not in resources); false for other calls
--   queue_name         the first queue (or ring group) the call entered: the queue_name of its
--                      earliest queue leg (stg_voipstudio__cdrs.queue_name, the one place a
--                      CDR's queue is read [guess]); null for a call that went through no queue
--   queue_id           the id of that queue: the loaded queue of that name in the account
--                      (stg_voipstudio__queue_names, the one home of the name -> id mapping,
--                      as in fct_queue_calls); null for a direct call, for a name no loaded
--                      queue has (renamed or deleted since), and when the queues were never
--                      loaded (an optional input: fct_calls does not wait for them)
--   queue_count        how many distinct queues the call entered (0: a direct call; 2+: it
--                      overflowed or was transferred from one queue to another)
--   is_business_hours  started within a business day's hours (business days
--                      {{ business_days }}, ISO 1 = Monday; business_hours_start to
--                      business_hours_end, reporting time zone); hours that run past
--                      midnight (an end before the start: a night shift) belong to the day
--                      they start on, so 01:00 on a Saturday is Friday's, and 01:00 on a
--                      Monday is Sunday's (as agg_agent_daily's business_seconds count them)
with legs as (
    select * from stg_voipstudio__cdrs
),

parts as (
    -- forward legs: outbound legs of a call that has an outside caller on another leg
    select
        legs.*,
        direction = 'outbound'
        and max(case when direction in ('inbound', 'missed') then 1 else 0 end) over (
            partition by account, call_key
        ) = 1 as is_forward_leg,
        start_epoch + ring_seconds as talk_start_epoch,
        start_epoch + ring_seconds + talk_seconds as talk_end_epoch
    from legs
),

talk_union as (
    -- each talking leg adds only the seconds after the latest talk end of the legs before it
    -- (by talk start) of the same part: summed, the length of the union of the intervals
    select
        parts.*,
        max(case when talk_seconds > 0 then talk_end_epoch end) over (
            partition by account, call_key
            order by talk_start_epoch nulls first, cdr_id nulls first
            rows between unbounded preceding and 1 preceding
        ) as call_talk_reached,
        max(case when talk_seconds > 0 then talk_end_epoch end) over (
            partition by account, call_key, is_forward_leg
            order by talk_start_epoch nulls first, cdr_id nulls first
            rows between unbounded preceding and 1 preceding
        ) as part_talk_reached
    from parts
),

ranked as (
    select
        talk_union.*,
        case
            when talk_seconds = 0 then 0
            when call_talk_reached is null or call_talk_reached <= talk_start_epoch
                then talk_seconds
            when call_talk_reached >= talk_end_epoch then 0
            else talk_end_epoch - call_talk_reached
        end as new_talk_seconds,
        case
            when talk_seconds = 0 then 0
            when part_talk_reached is null or part_talk_reached <= talk_start_epoch
                then talk_seconds
            when part_talk_reached >= talk_end_epoch then 0
            else talk_end_epoch - part_talk_reached
        end as new_part_talk_seconds,
        row_number() over (
            partition by account, call_key order by start_epoch, cdr_id
        ) as leg_number,
        row_number() over (
            partition by account, call_key
            order by case when is_answered then 0 else 1 end, answered_epoch, cdr_id
        ) as answer_rank,
        row_number() over (
            partition by account, call_key
            order by case when external_number is null then 1 else 0 end, start_epoch, cdr_id
        ) as number_rank,
        row_number() over (
            partition by account, call_key
            order by
                case when is_forward_leg then 1 else 0 end,
                case when destination is null then 1 else 0 end,
                start_epoch,
                cdr_id
        ) as destination_rank,
        row_number() over (
            partition by account, call_key
            order by
                case when is_forward_leg then 0 else 1 end,
                case when destination is null then 1 else 0 end,
                start_epoch,
                cdr_id
        ) as forward_destination_rank,
        row_number() over (
            partition by account, call_key
            order by case when queue_name is null then 1 else 0 end, start_epoch, cdr_id
        ) as queue_rank
    from talk_union
),

rolled_up as (
    -- one pass over the legs; "first_*" columns pick the value of the leg ranked first
    select
        account,
        call_key,
        min(call_id) as call_id,
        count(*) as leg_count,
        min(start_epoch) as start_epoch,
        max(end_epoch) as end_epoch,
        cast(sum(new_talk_seconds) as bigint) as talk_seconds,
        cast(sum(talk_seconds) as bigint) as leg_talk_seconds,
        cast(
            sum(case when not is_forward_leg then cast(coalesce(charge, 0) as decimal(18, 6)) end)
            as decimal(18, 6)
        ) as own_cost,
        count(case when is_forward_leg then 1 end) as forward_leg_count,
        cast(
            sum(case when is_forward_leg then cast(coalesce(charge, 0) as decimal(18, 6)) end)
            as decimal(18, 6)
        ) as forward_cost,
        cast(sum(case when is_forward_leg then new_part_talk_seconds else 0 end) as bigint)
            as forward_talk_seconds,
        cast(sum(case when not is_forward_leg then new_part_talk_seconds else 0 end) as bigint)
            as own_talk_seconds,
        max(case when is_forward_leg and is_answered then 1 else 0 end) as has_answered_forward,
        max(case when forward_destination_rank = 1 and is_forward_leg then destination end)
            as forward_destination,
        max(
            case
                when trim(cast(hangup_cause as varchar)) = '21' then 1 else 0
            end
        ) as has_rejected_leg,
        count(case when is_answered then 1 end) as answered_leg_count,
        count(distinct case when is_answered then user_id end) as answering_user_count,
        max(case when direction in ('inbound', 'missed') then 1 else 0 end) as has_inbound_leg,
        max(case when direction = 'outbound' then 1 else 0 end) as has_outbound_leg,
        max(case when direction = 'internal' then 1 else 0 end) as has_internal_leg,
        max(case when disposition = 'NO ANSWER' then 1 else 0 end) as has_no_answer_leg,
        max(case when disposition = 'BUSY' then 1 else 0 end) as has_busy_leg,
        max(case when disposition = 'FAILED' then 1 else 0 end) as has_failed_leg,
        max(case when leg_number = 1 then calldate_utc end) as started_at_utc,
        max(case when leg_number = 1 then calldate_local end) as started_at_local,
        max(case when leg_number = 1 then local_date end) as call_date,
        max(case when leg_number = 1 then coalesce(src_user_id, user_id) end)
            as first_leg_caller_user_id,
        max(case when answer_rank = 1 and is_answered then answered_epoch end)
            as first_answer_epoch,
        max(case when answer_rank = 1 and is_answered then user_id end)
            as first_answer_user_id,
        max(case when answer_rank = 1 and is_answered then dst_user_id end)
            as first_answer_dst_user_id,
        max(case when number_rank = 1 then external_number end) as external_number,
        max(case when destination_rank = 1 and not is_forward_leg then destination end)
            as destination,
        max(case when queue_rank = 1 then queue_name end) as queue_name,
        count(distinct queue_name) as queue_count
    from ranked
    group by account, call_key
),

calls as (
    select
        account,
        call_key,
        call_id,
        case
            when has_inbound_leg = 1 then 'inbound'
            when has_outbound_leg = 1 then 'outbound'
            when has_internal_leg = 1 then 'internal'
            else 'unknown'
        end as direction,
        started_at_utc,
        started_at_local,
        call_date,
        to_timestamp(end_epoch) at time zone 'UTC' as ended_at_utc,
        start_epoch,
        end_epoch,
        end_epoch - start_epoch as duration_seconds,
        leg_count,
        answered_leg_count > 0 as is_answered,
        first_answer_epoch as answered_epoch,
        case
            when answered_leg_count > 0 then first_answer_epoch - start_epoch
            else end_epoch - start_epoch
        end as wait_seconds,
        talk_seconds,
        leg_talk_seconds,
        coalesce(own_cost, cast(0 as decimal(18, 6))) as cost,
        forward_leg_count,
        coalesce(forward_cost, cast(0 as decimal(18, 6))) as forward_cost,
        own_talk_seconds,
        forward_talk_seconds,
        forward_destination,
        has_answered_forward = 1 as is_forward_answered,
        answered_leg_count = 0 and has_no_answer_leg = 0 and has_busy_leg = 0
        and has_rejected_leg = 1 as is_rejected,
        case
            when answered_leg_count > 0 then 'answered'
            when has_no_answer_leg = 1 then 'no_answer'
            when has_busy_leg = 1 then 'busy'
            when has_failed_leg = 1 then 'failed'
            else 'other'
        end as outcome,
        answering_user_count > 1 as is_transferred,
        first_answer_user_id,
        first_answer_dst_user_id,
        first_leg_caller_user_id,
        external_number,
        destination,
        queue_name,
        queue_count,
        extract(isodow from started_at_local) as local_isodow,
        extract(hour from started_at_local) * 3600
        + extract(minute from started_at_local) * 60
        + extract(second from started_at_local) as local_seconds_of_day
    from rolled_up
),

flagged as (
    select
        calls.*,
        direction = 'inbound' and not is_answered as is_missed,
        direction = 'inbound' and not is_answered and outcome not in ('busy', 'failed')
            as is_abandoned,
        outcome in ('answered', 'no_answer', 'busy') or is_rejected as is_network_effective,
        case
            when is_answered and direction = 'inbound' then first_answer_user_id
            when is_answered and direction = 'internal' then first_answer_dst_user_id
        end as answering_user_id,
        case
            when direction in ('outbound', 'internal') then first_leg_caller_user_id
        end as calling_user_id,
        case
            when {{ business_hours_start_seconds }} <= {{ business_hours_end_seconds }}
                then local_isodow in ({{ business_days }})
                and local_seconds_of_day >= {{ business_hours_start_seconds }}
                and local_seconds_of_day < {{ business_hours_end_seconds }}
            -- past midnight: the evening of a business day, or the morning after one
            else (
                local_isodow in ({{ business_days }})
                and local_seconds_of_day >= {{ business_hours_start_seconds }}
            ) or (
                (local_isodow + 5) % 7 + 1 in ({{ business_days }})  -- the day before
                and local_seconds_of_day < {{ business_hours_end_seconds }}
            )
        end as is_business_hours
    from calls
),

call_rows as (
    select
        account,
        call_key,
        call_id,
        direction,
        call_date,
        started_at_utc,
        started_at_local,
        ended_at_utc,
        start_epoch,
        end_epoch,
        answered_epoch,
        duration_seconds,
        wait_seconds,
        talk_seconds,
        leg_talk_seconds,
        cost,
        leg_count,
        own_talk_seconds,
        forward_leg_count,
        forward_cost,
        forward_talk_seconds,
        forward_destination,
        is_forward_answered,
        outcome,
        is_answered,
        is_missed,
        is_abandoned,
        is_abandoned and wait_seconds <= {{ short_abandon_seconds }} as is_short_abandon,
        direction = 'inbound' and (is_answered or is_abandoned) as is_offered,
        direction = 'inbound' and is_answered and wait_seconds <= {{ service_level_seconds }}
            as is_answered_within_sl,
        is_rejected,
        is_network_effective,
        is_transferred,
        is_business_hours,
        answering_user_id,
        calling_user_id,
        external_number,
        destination,
        queue_name,
        queue_count
    from flagged
),

-- Flags from other collections. A collection that was never loaded reads as one row of NULLs
-- (the "-- optional input:" lines): its flag is then NULL (unknown), not false. Numbers are
-- compared as written, without spaces and the separators - ( ) . / (the staging models'
-- *_clean columns, a missing number as ''), not normalized: a recording and its leg are
-- written by the same PBX.
loaded as (
    select
        not exists (select 1 from stg_voipstudio__monitors where account is null)
            as recordings_loaded,
        not exists (select 1 from stg_voipstudio__voicemessages where account is null)
            as voicemail_loaded
),

leg_numbers as (
    select
        account,
        call_key,
        start_epoch,
        coalesce(src_clean, '') as src_clean,
        coalesce(dst_clean, '') as dst_clean
    from legs
),

recordings as (
    select
        account,
        start_epoch,
        coalesce(caller_clean, '') as caller_clean,
        coalesce(called_clean, '') as called_clean
    from stg_voipstudio__monitors
    where account is not null
),

recorded_calls as (
    select distinct leg_numbers.account, leg_numbers.call_key
    from leg_numbers
    inner join recordings
        on recordings.account = leg_numbers.account
        and recordings.start_epoch = leg_numbers.start_epoch
        and recordings.caller_clean = leg_numbers.src_clean
        and recordings.called_clean = leg_numbers.dst_clean
),

messages as (
    select
        account,
        start_epoch,
        coalesce(caller_clean, '') as caller_clean
    from stg_voipstudio__voicemessages
    where account is not null
),

voicemail_calls as (
    select distinct call_rows.account, call_rows.call_key
    from call_rows
    inner join leg_numbers
        on leg_numbers.account = call_rows.account
        and leg_numbers.call_key = call_rows.call_key
    inner join messages
        on messages.account = call_rows.account
        and messages.caller_clean = leg_numbers.src_clean
        and messages.start_epoch between call_rows.end_epoch and call_rows.end_epoch + 60
    where call_rows.is_missed and messages.caller_clean <> ''
),

final as (
    select
        call_rows.*,
        case
            when loaded.recordings_loaded then recorded_calls.call_key is not null
        end as was_recorded,
        case
            when loaded.voicemail_loaded then voicemail_calls.call_key is not null
        end as went_to_voicemail,
        queue_names.queue_id
    from call_rows
    cross join loaded
    left join recorded_calls
        on recorded_calls.account = call_rows.account
        and recorded_calls.call_key = call_rows.call_key
    left join voicemail_calls
        on voicemail_calls.account = call_rows.account
        and voicemail_calls.call_key = call_rows.call_key
    left join stg_voipstudio__queue_names as queue_names
        on queue_names.account = call_rows.account
        and queue_names.queue_name = call_rows.queue_name
)

select * from final
