-- grain: one row per account, day (reporting time zone), user and queue (or none) with at least
-- one CDR leg of the user that day; key: (account, call_date, user_id, queue_key)
-- incremental: partition (account, call_date)
--   stg_voipstudio__cdrs: through fct_calls (account, call_key)
--   fct_missed_call_callbacks: call_date = callback_date
--   stg_voipstudio__queue_names: rows where this.queue_key = stg_voipstudio__queue_names.queue_name
--
-- The agents' view of the queues: agg_user_daily's counts split by the queue of the user's legs
-- (stg_voipstudio__cdrs.queue_name, the one place a CDR's queue is read [guess]). A row with
-- queue_key '' (queue_name null) holds the user's legs outside any queue: direct inbound calls,
-- transfers, outbound and internal calls. Counted on the day the call started (fct_calls
-- .call_date), like agg_user_daily; counts are of calls (a user with two legs of one call in
-- one queue counts once). Sum the rows of a user over queue_key for the user's day: that is
-- agg_user_daily's row (the call counts once per queue the user took part in it).
--
--   queue_key              queue_name, or '' for the legs outside any queue (the key needs a
--                          value); queue_name and queue_id null there
--   offered_calls          inbound calls that rang the user (an inbound or missed leg of theirs)
--   answered_calls         of those, the calls the user answered (a leg of theirs answered)
--   rona_calls             ring no answer: rang the user, not answered by them, and a leg of
--                          theirs was not cut by a colleague answering (hang-up cause not Q.850
--                          26: stg_voipstudio__cdrs.is_ring_no_answer), as
--                          agg_user_daily.rona_calls
--   answered_talk_seconds  billsec of the user's answered inbound legs: the handle time. CDRs
--                          carry no hold or wrap-up (after-call work) time, so it is talk only;
--                          avg_handle_seconds = answered_talk_seconds / answered_calls
--   outbound_calls         outbound calls the user placed (queue_key '')
--   callbacks_made         of those, the callbacks of a missed call (fct_missed_call_callbacks,
--                          callback_type 'callback')
--   talk_seconds           billsec of all the user's legs of the row
--   business_seconds       the length of the day's business hours (0 on a day that is not a
--                          business day): the same on every row of the day
--   occupancy_proxy        talk_seconds / business_seconds. CDRs carry no login, ready or pause
--                          data, so real occupancy (busy / logged-in time) cannot be computed:
--                          this is talk as a share of business hours, a proxy without an upper
--                          bound that reads low for part-time agents and can pass 1 for calls outside
--                          business hours. Across queues, sum talk_seconds and divide by one
--                          business_seconds (never sum business_seconds over queues).
with legs as (
    select * from stg_voipstudio__cdrs
    where user_id is not null
),

calls as (
    select account, call_key, call_date, direction from fct_calls
),

queues as (
    select account, queue_name, queue_id from stg_voipstudio__queue_names
),

callback_calls as (
    select distinct account, callback_call_key
    from fct_missed_call_callbacks
    where callback_type = 'callback'
),

user_calls as (
    -- one row per account, user, call and queue of the user's legs
    select
        legs.account,
        legs.user_id,
        legs.call_key,
        coalesce(legs.queue_name, '') as queue_key,
        calls.call_date,
        calls.direction as call_direction,
        max(case when legs.is_answered then 1 else 0 end) as user_answered,
        max(case when legs.direction in ('inbound', 'missed') then 1 else 0 end) as user_rang,
        max(case when legs.is_ring_no_answer then 1 else 0 end) as user_rang_unanswered,
        max(case when legs.direction = 'outbound' then 1 else 0 end) as user_placed_outbound,
        sum(legs.talk_seconds) as talk_seconds,
        sum(case when legs.is_answered and legs.direction = 'inbound' then legs.talk_seconds end)
            as answered_talk_seconds
    from legs
    inner join calls on calls.account = legs.account and calls.call_key = legs.call_key
    group by
        legs.account,
        legs.user_id,
        legs.call_key,
        coalesce(legs.queue_name, ''),
        calls.call_date,
        calls.direction
),

daily as (
    select
        user_calls.account,
        user_calls.call_date,
        user_calls.user_id,
        user_calls.queue_key,
        count(case when call_direction = 'inbound' and user_rang = 1 then 1 end)
            as offered_calls,
        count(
            case when call_direction = 'inbound' and user_rang = 1 and user_answered = 1 then 1 end
        ) as answered_calls,
        count(
            case
                when call_direction = 'inbound' and user_rang = 1 and user_answered = 0
                    and user_rang_unanswered = 1 then 1
            end
        ) as rona_calls,
        cast(
            sum(
                case
                    when call_direction = 'inbound' and user_rang = 1 and user_answered = 1
                        then coalesce(answered_talk_seconds, 0)
                    else 0
                end
            ) as bigint
        ) as answered_talk_seconds,
        count(case when user_placed_outbound = 1 then 1 end) as outbound_calls,
        count(
            case
                when user_placed_outbound = 1 and callback_calls.callback_call_key is not null
                    then 1
            end
        ) as callbacks_made,
        cast(sum(talk_seconds) as bigint) as talk_seconds
    from user_calls
    left join callback_calls
        on callback_calls.account = user_calls.account
        and callback_calls.callback_call_key = user_calls.call_key
    group by user_calls.account, user_calls.call_date, user_calls.user_id, user_calls.queue_key
),

sized as (
    select
        daily.*,
        case
            when extract(isodow from cast(call_date as timestamp)) in ({{ business_days }})
                then case
                    when {{ business_hours_start_seconds }} <= {{ business_hours_end_seconds }}
                        then {{ business_hours_end_seconds }} - {{ business_hours_start_seconds }}
                    else 86400 - {{ business_hours_start_seconds }} + {{ business_hours_end_seconds }}
                end
            else 0
        end as business_seconds
    from daily
),

final as (
    select
        sized.account,
        sized.call_date,
        sized.user_id,
        sized.queue_key,
        queues.queue_id,
        nullif(sized.queue_key, '') as queue_name,
        offered_calls,
        answered_calls,
        rona_calls,
        answered_talk_seconds,
        cast(answered_talk_seconds as double) / nullif(answered_calls, 0) as avg_handle_seconds,
        outbound_calls,
        callbacks_made,
        talk_seconds,
        business_seconds,
        cast(talk_seconds as double) / nullif(business_seconds, 0) as occupancy_proxy
    from sized
    left join queues on queues.account = sized.account and queues.queue_name = sized.queue_key
)

select * from final
