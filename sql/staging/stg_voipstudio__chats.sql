-- grain: one row per account and website chat; key: (account, chat_id)
-- incremental: key (account, chat_id)
--   voipstudio.chats: (account, id)
--
-- The loaded chats (/chats, loaded when the resources setting or --resources names chats),
-- renamed; chats `voipstudio reconcile` marked deleted are left out. `state` is a number 0-4
-- [doc]; what each value means is not documented, so it is kept as the API gives it (the
-- emulator uses 2 closed, 3 missed, 4 offline message: a guess, see docs/emulator.md).
--
--   account           the VoIPstudio account the chat was synced from
--   started_at_utc    when the chat started (created_at), a wall-clock TIMESTAMP in UTC
--   started_at_local  the same instant on the wall clock of the reporting time zone
--   local_date        the date of started_at_local
--   duration_seconds  the chat's length (0 when unknown)
--   operator_user_id  the VoIPstudio user who answered it (operator_id; null: nobody)
--   state             0-4 as the API gives it
--   website_id        the website the chat came from
--   visitor_*         what the API tells of the visitor
with source as (
    select * from voipstudio.chats
    where deleted_at is null
),

renamed as (
    select
        account,
        id as chat_id,
        created_at at time zone 'UTC' as started_at_utc,
        created_at at time zone {{ reporting_timezone }} as started_at_local,
        cast(created_at at time zone {{ reporting_timezone }} as date) as local_date,
        coalesce(duration, 0) as duration_seconds,
        operator_id as operator_user_id,
        operator_ua as operator_user_agent,
        state,
        website_id,
        visitor_id,
        visitor_name,
        visitor_email,
        visitor_city,
        visitor_country,
        visitor_geo,
        visitor_ip,
        visitor_referer,
        visitor_ua as visitor_user_agent
    from source
)

select * from renamed
