-- grain: one row per account and day (reporting time zone) with at least one inbound call from
-- an outside number; key: (account, call_date)
-- incremental: partition (account, call_date)
--   fct_calls: call_date covers days of [start_epoch - 604800, start_epoch + 1)
--   dim_accounts: call_date covers days between old and new data_horizon_epoch - 86400, data_horizon_epoch - 604800
--
-- Repeat contacts, counted on the day of the first contact: every inbound call from an outside
-- number (fct_calls direction inbound with an external_number, answered or not) is a contact,
-- and it is repeated when the same number calls the same account again within 24 hours / 7
-- days of its start. Every contact counts, whether or not its number ever calls again, so that
-- the rates are over all inbound callers (rpt_repeat_callers sums the same calls per number).
-- Each figure is a count: a BI tool rolls them up over days, weeks or accounts and divides.
--
-- Rebuilt day by day: a changed call changes the repeats of the number's contacts in the 7 days
-- before it; the moving data horizon closes the windows of the days 24 h and 7 days before it.
--
--   inbound_contacts              inbound calls from an outside number that started that day
--   repeated_within_24h / _7d     of those, the ones the number followed with another inbound
--                                 call to the account starting at most 24 h / 7 days later
--   answered_contacts             of inbound_contacts, those answered
--   answered_repeated_within_24h / _7d
--                                 answered contacts followed by another call within 24 h / 7
--                                 days: the first contact did not settle it. The first-contact
--                                 resolution proxy (FCR) = 1 - answered_repeated_within_7d /
--                                 answered_contacts
--   window_closed_24h / _7d       contacts whose 24 h / 7 day window has fully passed by the
--                                 account's data horizon (dim_accounts.data_horizon_epoch): only
--                                 for those is "not repeated" final. Rates should be taken over
--                                 days whose windows are all closed (window_closed_7d =
--                                 inbound_contacts), where repeats cannot still be added
--   repeat_rate_7d                repeated_within_7d / inbound_contacts
--   fcr_rate_7d                   1 - answered_repeated_within_7d / answered_contacts
with contacts as (
    select account, call_key, call_date, external_number, start_epoch, is_answered
    from fct_calls
    where direction = 'inbound' and external_number is not null
),

horizon as (
    select account, data_horizon_epoch from dim_accounts
),

sequenced as (
    select
        contacts.*,
        lead(start_epoch) over (
            partition by account, external_number
            order by start_epoch nulls first, call_key nulls first
        ) - start_epoch as gap_seconds
    from contacts
),

flagged as (
    select
        sequenced.account,
        sequenced.call_date,
        sequenced.is_answered,
        coalesce(sequenced.gap_seconds <= 86400, false) as is_repeated_24h,
        coalesce(sequenced.gap_seconds <= 604800, false) as is_repeated_7d,
        horizon.data_horizon_epoch - sequenced.start_epoch >= 86400 as is_closed_24h,
        horizon.data_horizon_epoch - sequenced.start_epoch >= 604800 as is_closed_7d
    from sequenced
    inner join horizon on horizon.account = sequenced.account
),

daily as (
    select
        account,
        call_date,
        count(*) as inbound_contacts,
        count(case when is_repeated_24h then 1 end) as repeated_within_24h,
        count(case when is_repeated_7d then 1 end) as repeated_within_7d,
        count(case when is_answered then 1 end) as answered_contacts,
        count(case when is_answered and is_repeated_24h then 1 end)
            as answered_repeated_within_24h,
        count(case when is_answered and is_repeated_7d then 1 end)
            as answered_repeated_within_7d,
        count(case when is_closed_24h then 1 end) as window_closed_24h,
        count(case when is_closed_7d then 1 end) as window_closed_7d
    from flagged
    group by account, call_date
),

final as (
    select
        daily.*,
        cast(repeated_within_7d as double) / nullif(inbound_contacts, 0) as repeat_rate_7d,
        1 - cast(answered_repeated_within_7d as double) / nullif(answered_contacts, 0)
            as fcr_rate_7d
    from daily
)

select * from final
