-- grain: one row per account, call and queue the call entered (a call through two queues has
-- two rows); key: (account, call_key, queue_name)
-- incremental: partition (account, call_key)
--   stg_voipstudio__queue_names: rows where this.queue_name = stg_voipstudio__queue_names.queue_name
--
-- The calls as each queue saw them: the base of agg_queue_daily and agg_queue_interval (one
-- home for the per-queue definitions). A call's queue legs are its CDRs with a queue_name
-- (stg_voipstudio__cdrs.queue_name: destination of a 'from-queue' leg, the one place a CDR's
-- queue is read [guess]). A call counts as offered to every queue it entered and as answered
-- by the queue whose leg answered it (the usual convention).
--
--   queue_name, queue_id   the queue (queue_id by name within the account: the loaded queue
--                          of that name, stg_voipstudio__queue_names, the one home of the
--                          mapping; null when the loaded queues have no such name)
--   queue_sequence         1 for the first queue the call entered, 2 for the next, ...;
--                          queue_count: how many queues it entered (fct_calls.queue_count)
--   entered_epoch          the start of the call's first leg in this queue (Unix seconds);
--                          entered_at_local: the same on the reporting zone's clock
--   call_date              the local day the call entered this queue (not always the day the
--                          call started: a call can enter a second queue after midnight)
--   interval_start_epoch   the start of the {{ queue_interval_seconds }} s interval of the local
--                          clock it entered in: intervals start where the local clock shows a
--                          multiple of the interval (DST-correct: on the autumn change the two
--                          02:00 intervals are two rows, apart by an hour of real time)
--   left_epoch             the end of the call's last leg in this queue
--   is_answered            a leg of this queue answered (CONNECTED, billsec > 0)
--   answered_epoch         the first answer of this queue's legs
--   wait_seconds           answered: answered_epoch - entered_epoch; otherwise
--                          left_epoch - entered_epoch (how long the caller waited in this queue)
--   talk_seconds           billsec of this queue's legs
--   holding_seconds        left_epoch - entered_epoch: the caller's time in the queue, waiting
--                          and talking (the traffic the queue carried for the call)
--   is_offered             inbound, and the call was offered (fct_calls.is_offered: answered or
--                          abandoned, anywhere) or it moved on from this queue to another one
--   is_abandoned           not answered anywhere (fct_calls.is_abandoned) and this is the last
--                          queue it entered: the caller hung up waiting here
--   is_short_abandon       abandoned here with wait_seconds <= {{ short_abandon_seconds }}
--   is_overflowed          offered here, not answered here and not abandoned here: it left this
--                          queue unanswered for another queue (overflow) or was answered
--                          outside any queue. offered = answered + abandoned + overflowed
--   is_answered_within_sl  answered here with wait_seconds <= {{ service_level_seconds }}
--   answering_user_id      the user of this queue's first answered leg
with queue_legs as (
    select
        account,
        call_key,
        cdr_id,
        queue_name,
        user_id,
        start_epoch,
        end_epoch,
        talk_seconds,
        is_answered,
        answered_epoch,
        calldate_local,
        row_number() over (
            partition by account, call_key, queue_name order by start_epoch, cdr_id
        ) as leg_in_queue,
        row_number() over (
            partition by account, call_key, queue_name
            order by case when is_answered then 0 else 1 end, answered_epoch, cdr_id
        ) as answer_in_queue
    from stg_voipstudio__cdrs
    where queue_name is not null
),

calls as (
    select account, call_key, direction, is_offered, is_abandoned from fct_calls
),

queues as (
    select account, queue_name, queue_id from stg_voipstudio__queue_names
),

per_queue as (
    select
        account,
        call_key,
        queue_name,
        min(start_epoch) as entered_epoch,
        max(case when leg_in_queue = 1 then calldate_local end) as entered_at_local,
        max(end_epoch) as left_epoch,
        max(case when answer_in_queue = 1 and is_answered then answered_epoch end)
            as answered_epoch,
        max(case when answer_in_queue = 1 and is_answered then user_id end)
            as answering_user_id,
        cast(sum(talk_seconds) as bigint) as talk_seconds
    from queue_legs
    group by account, call_key, queue_name
),

sequenced as (
    select
        per_queue.*,
        row_number() over (
            partition by account, call_key order by entered_epoch, queue_name
        ) as queue_sequence,
        count(*) over (partition by account, call_key) as queue_count,
        cast(
            extract(hour from entered_at_local) * 3600
            + extract(minute from entered_at_local) * 60
            + extract(second from entered_at_local)
            as bigint
        ) as entered_local_seconds
    from per_queue
),

flagged as (
    select
        sequenced.account,
        sequenced.call_key,
        sequenced.queue_name,
        queue_sequence,
        queue_count,
        entered_epoch,
        entered_at_local,
        cast(entered_at_local as date) as call_date,
        entered_epoch - entered_local_seconds % {{ queue_interval_seconds }}
            as interval_start_epoch,
        left_epoch,
        answered_epoch is not null as is_answered,
        answered_epoch,
        case
            when answered_epoch is not null then answered_epoch - entered_epoch
            else left_epoch - entered_epoch
        end as wait_seconds,
        talk_seconds,
        left_epoch - entered_epoch as holding_seconds,
        calls.direction = 'inbound'
        and (calls.is_offered or queue_sequence < queue_count) as is_offered,
        answered_epoch is null and calls.is_abandoned and queue_sequence = queue_count
            as is_abandoned,
        answering_user_id
    from sequenced
    inner join calls on calls.account = sequenced.account and calls.call_key = sequenced.call_key
),

final as (
    select
        flagged.account,
        call_key,
        queues.queue_id,
        flagged.queue_name,
        queue_sequence,
        queue_count,
        call_date,
        entered_epoch,
        entered_at_local,
        interval_start_epoch,
        left_epoch,
        answered_epoch,
        wait_seconds,
        talk_seconds,
        holding_seconds,
        is_offered,
        is_answered,
        is_abandoned,
        is_abandoned and wait_seconds <= {{ short_abandon_seconds }} as is_short_abandon,
        is_offered and not is_answered and not is_abandoned as is_overflowed,
        is_answered and wait_seconds <= {{ service_level_seconds }} as is_answered_within_sl,
        answering_user_id
    from flagged
    left join queues
        on queues.account = flagged.account and queues.queue_name = flagged.queue_name
)

select * from final
