-- grain: one row per account, day (reporting time zone), user and direction with at least one
-- SMS that day; key: (account, sms_date, user_key, direction)
-- incremental: partition (account, sms_date)
--   stg_voipstudio__sms: sms_date = local_date
--
-- Built only when SMS are loaded (sms in the resources setting). Messages are counted on the day
-- they were written (created_at, reporting time zone). Counts add up over days, users and
-- accounts; each ratio keeps its numerator and denominator.
--
--   user_id            the VoIPstudio user who sent or received the message (null when the API
--                      names none); user_key = user_id, or 0 when null (keys are never null)
--   direction          outbound (sent by a user), inbound (received) or unknown
--   messages           messages of the row
--   sent_messages      outbound messages; received_messages: inbound messages
--   failed_messages    messages whose result is FAILED (outbound ones, in practice)
--   delivered_messages messages whose result is DELIVERED
--   failure_rate       failed_messages / sent_messages (outbound rows; null without sent ones)
--   characters         characters of the messages' text (message_length summed)
with messages as (
    select * from stg_voipstudio__sms
),

daily as (
    select
        account,
        local_date as sms_date,
        coalesce(user_id, 0) as user_key,
        max(user_id) as user_id,
        direction,
        count(*) as messages,
        count(case when direction = 'outbound' then 1 end) as sent_messages,
        count(case when direction = 'inbound' then 1 end) as received_messages,
        count(case when is_failed then 1 end) as failed_messages,
        count(case when upper(result) = 'DELIVERED' then 1 end) as delivered_messages,
        cast(sum(message_length) as bigint) as characters
    from messages
    group by account, local_date, coalesce(user_id, 0), direction
)

select
    account,
    sms_date,
    user_key,
    user_id,
    direction,
    messages,
    sent_messages,
    received_messages,
    failed_messages,
    delivered_messages,
    cast(failed_messages as double) / nullif(sent_messages, 0) as failure_rate,
    characters
from daily
