-- grain: one row per account, day (reporting time zone) and user of the account with at least
-- one CDR leg that day; key: (account, call_date, user_id)
-- incremental: partition (account, call_date)
--   stg_voipstudio__cdrs: through fct_calls (account, call_key)
--   fct_missed_call_callbacks: call_date = callback_date
--   stg_voipstudio__users: rows where this.user_id = stg_voipstudio__users.user_id
--
-- Built from each user's own legs (cdrs.user_id), counted on the day their call started. Counts
-- are of calls (a user with two legs in one call counts once) unless named *_legs. User ids are
-- only unique within an account: legs, calls, names and callbacks are matched within it.
--
--   handled_calls              calls in which one of the user's legs was answered (talked),
--                              any direction
--   inbound_handled_calls      handled inbound calls
--   outbound_calls             outbound calls the user placed (an outbound leg of theirs);
--                              outbound_answered_calls: those answered
--   internal_calls             internal calls with a leg of the user's (the caller's CDR)
--   missed_calls               inbound calls that rang the user (an inbound or missed leg of
--                              theirs) and that the user did not answer, whether or not a
--                              colleague did
--   missed_unanswered_calls    of missed_calls, those nobody answered (fct_calls.is_missed)
--   rona_calls                 of missed_calls, ring-no-answer (RONA): a leg of the user's rang and
--                              was not answered, and was not cut because a colleague answered
--                              (its hang-up cause is not Q.850 26: a leg with
--                              stg_voipstudio__cdrs.is_ring_no_answer); the user's own misses
--   answered_elsewhere_calls   of missed_calls, those where every leg that rang the user ended
--                              with cause 26 (non-selected user clearing: a colleague answered
--                              while it rang, as in a ring-all queue; is_answered_elsewhere).
--                              Not the user's miss.
--                              missed_calls = rona_calls + answered_elsewhere_calls
--   talk_seconds               billsec of the user's legs
--   answered_ring_seconds      ring_seconds of the user's answered inbound legs
--   inbound_answered_legs      the user's answered inbound legs
--   avg_ring_seconds           average ring time before the user answered
--                              = answered_ring_seconds / inbound_answered_legs
--   callbacks_made             outbound calls of the user's that were the callback of at least
--                              one missed call (fct_missed_call_callbacks, callback_type 'callback')
with legs as (
    select * from stg_voipstudio__cdrs
    where user_id is not null
),

calls as (
    select * from fct_calls
),

users as (
    select * from stg_voipstudio__users
),

callback_calls as (
    select distinct account, callback_call_key
    from fct_missed_call_callbacks
    where callback_type = 'callback'
),

user_calls as (
    -- one row per account, user and call: what the user did in it
    select
        legs.account,
        legs.user_id,
        legs.call_key,
        calls.call_date,
        calls.direction as call_direction,
        calls.is_answered as is_call_answered,
        max(case when legs.is_answered then 1 else 0 end) as user_answered,
        max(case when legs.direction in ('inbound', 'missed') then 1 else 0 end) as user_rang,
        max(case when legs.is_ring_no_answer then 1 else 0 end) as user_rang_unanswered,
        max(case when legs.direction = 'outbound' then 1 else 0 end) as user_placed_outbound,
        max(case when legs.direction = 'internal' then 1 else 0 end) as user_internal,
        sum(legs.talk_seconds) as talk_seconds,
        sum(
            case
                when legs.is_answered and legs.direction = 'inbound' then legs.ring_seconds
                else 0
            end
        )
            as answered_ring_seconds,
        count(case when legs.is_answered and legs.direction = 'inbound' then 1 end)
            as inbound_answered_legs
    from legs
    inner join calls on calls.account = legs.account and calls.call_key = legs.call_key
    group by
        legs.account,
        legs.user_id,
        legs.call_key,
        calls.call_date,
        calls.direction,
        calls.is_answered
),

daily as (
    select
        user_calls.account,
        user_calls.call_date,
        user_calls.user_id,
        count(case when user_answered = 1 then 1 end) as handled_calls,
        count(case when user_answered = 1 and call_direction = 'inbound' then 1 end)
            as inbound_handled_calls,
        count(case when user_placed_outbound = 1 then 1 end) as outbound_calls,
        count(case when user_placed_outbound = 1 and is_call_answered then 1 end)
            as outbound_answered_calls,
        count(case when user_internal = 1 then 1 end) as internal_calls,
        count(
            case when call_direction = 'inbound' and user_rang = 1 and user_answered = 0 then 1 end
        )
            as missed_calls,
        count(
            case
                when call_direction = 'inbound' and user_rang = 1 and user_answered = 0
                    and not is_call_answered then 1
            end
        ) as missed_unanswered_calls,
        count(
            case
                when call_direction = 'inbound' and user_rang = 1 and user_answered = 0
                    and user_rang_unanswered = 1 then 1
            end
        ) as rona_calls,
        count(
            case
                when call_direction = 'inbound' and user_rang = 1 and user_answered = 0
                    and user_rang_unanswered = 0 then 1
            end
        ) as answered_elsewhere_calls,
        cast(sum(talk_seconds) as bigint) as talk_seconds,
        cast(sum(answered_ring_seconds) as bigint) as answered_ring_seconds,
        cast(sum(inbound_answered_legs) as bigint) as inbound_answered_legs,
        count(
            case
                when user_placed_outbound = 1 and callback_calls.callback_call_key is not null
                    then 1
            end
        ) as callbacks_made
    from user_calls
    left join callback_calls
        on callback_calls.account = user_calls.account
        and callback_calls.callback_call_key = user_calls.call_key
    group by user_calls.account, user_calls.call_date, user_calls.user_id
),

final as (
    select
        daily.account,
        daily.call_date,
        daily.user_id,
        users.full_name as user_name,
        users.extension,
        daily.handled_calls,
        daily.inbound_handled_calls,
        daily.outbound_calls,
        daily.outbound_answered_calls,
        daily.internal_calls,
        daily.missed_calls,
        daily.missed_unanswered_calls,
        daily.rona_calls,
        daily.answered_elsewhere_calls,
        daily.talk_seconds,
        daily.answered_ring_seconds,
        daily.inbound_answered_legs,
        cast(daily.answered_ring_seconds as double) / nullif(daily.inbound_answered_legs, 0)
            as avg_ring_seconds,
        daily.callbacks_made
    from daily
    left join users on users.account = daily.account and users.user_id = daily.user_id
)

select * from final
