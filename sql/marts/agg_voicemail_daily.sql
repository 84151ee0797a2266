-- grain: one row per account, day (reporting time zone) and mailbox with at least one voicemail
-- message left that day; key: (account, voicemail_date, mailbox)
-- incremental: partition (account, voicemail_date)
--   stg_voipstudio__voicemessages: voicemail_date = local_date
--   stg_voipstudio__users: rows where this.mailbox = cast(stg_voipstudio__users.extension as varchar)
--   stg_voipstudio__queues: rows where this.mailbox = cast(stg_voipstudio__queues.queue_number as varchar)
--
-- Built only when voicemail is loaded (voicemessages in the resources setting). Messages are
-- counted on the day they were left (origtime, reporting time zone), in the mailbox they were
-- left in (dialled). Each ratio keeps its numerator and denominator: sum them over days,
-- mailboxes or accounts, then divide.
--
--   mailbox                 the message's dialled: a user's extension or a queue's number
--                           ('' when the API gives none)
--   user_id                 the user of the account whose extension is the mailbox (the
--                           smallest id if several), else null
--   queue_id                the queue of the account whose number is the mailbox (the smallest
--                           id if several), else null
--   mailbox_kind            'user', 'queue' or 'unknown' (a user's extension wins over a queue)
--   messages                messages left
--   duration_seconds        their total length; avg_duration_seconds = duration_seconds /
--                           messages
--   new_messages            messages not listened to yet (is_new) when last synced;
--                           listened_messages = messages - new_messages
--   messages_with_caller    messages whose caller number is known (not anonymous)
with messages as (
    select
        account,
        local_date as voicemail_date,
        coalesce(mailbox, '') as mailbox,
        duration_seconds,
        is_new,
        caller_number
    from stg_voipstudio__voicemessages
),

users as (
    select account, extension, min(user_id) as user_id
    from stg_voipstudio__users
    where extension is not null
    group by account, extension
),

queues as (
    select account, queue_number, min(queue_id) as queue_id
    from stg_voipstudio__queues
    where queue_number is not null
    group by account, queue_number
),

daily as (
    select
        account,
        voicemail_date,
        mailbox,
        count(*) as messages,
        cast(sum(duration_seconds) as bigint) as duration_seconds,
        count(case when is_new then 1 end) as new_messages,
        count(case when caller_number is not null then 1 end) as messages_with_caller
    from messages
    group by account, voicemail_date, mailbox
),

final as (
    select
        daily.account,
        daily.voicemail_date,
        daily.mailbox,
        users.user_id,
        queues.queue_id,
        case
            when users.user_id is not null then 'user'
            when queues.queue_id is not null then 'queue'
            else 'unknown'
        end as mailbox_kind,
        daily.messages,
        daily.duration_seconds,
        cast(daily.duration_seconds as double) / nullif(daily.messages, 0)
            as avg_duration_seconds,
        daily.new_messages,
        daily.messages - daily.new_messages as listened_messages,
        daily.messages_with_caller
    from daily
    left join users
        on users.account = daily.account
        and cast(users.extension as varchar) = daily.mailbox
    left join queues
        on queues.account = daily.account
        and cast(queues.queue_number as varchar) = daily.mailbox
)

select * from final
