-- grain: one row per account and transaction; key: (account, transaction_id)
-- incremental: key (account, transaction_id)
--   voipstudio.transactions: (account, id)
--
-- The loaded transactions (/transactions, loaded when the resources setting or --resources
-- names transactions), renamed; transactions `voipstudio reconcile` marked deleted are left
-- out. Amounts are in the transaction's own currency (currency_iso): accounts may differ, and
-- nothing here converts between currencies. CDR charges carry no currency: they are in the
-- account's currency, which is the one its transactions give.
--
--   account            the VoIPstudio account the transaction was synced from
--   created_at_utc     when it was made (created_at), a wall-clock TIMESTAMP in UTC
--   created_at_local   the same instant on the wall clock of the reporting time zone
--   local_date         the date of created_at_local
--   amount             as the API gives it, in currency
--   currency           the ISO 4217 code (currency_iso)
--   transaction_type   as the API gives it (subscription, calls, payment, ...)
--   result             as the API gives it (completed, pending, failed, ...)
--   is_pending         result is pending: not issued yet, no invoice
--   invoice_route      the API path of the invoice PDF (/transactions/<id>.pdf); null while
--                      pending
with source as (
    select * from voipstudio.transactions
    where deleted_at is null
),

renamed as (
    select
        account,
        id as transaction_id,
        created_at at time zone 'UTC' as created_at_utc,
        created_at at time zone {{ reporting_timezone }} as created_at_local,
        cast(created_at at time zone {{ reporting_timezone }} as date) as local_date,
        amount,
        currency_iso as currency,
        type as transaction_type,
        result,
        coalesce(lower(result) = 'pending', false) as is_pending,
        case
            when coalesce(lower(result), '') <> 'pending'
                then '/transactions/' || cast(id as varchar) || '.pdf'
        end as invoice_route
    from source
)

select * from renamed
