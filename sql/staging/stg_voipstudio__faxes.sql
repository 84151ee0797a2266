-- grain: one row per account and fax; key: (account, fax_id)
-- incremental: key (account, fax_id)
--   voipstudio.faxes: (account, id)
--
-- The loaded faxes (/faxes, loaded when the resources setting or --resources names faxes),
-- renamed; faxes `voipstudio reconcile` marked deleted are left out. The PDF itself is not
-- loaded: `voipstudio download faxes` fetches it from file_route.
--
--   account        the VoIPstudio account the fax was synced from
--   sent_at_utc    when the fax was sent or received (created_at), a wall-clock TIMESTAMP in UTC
--   sent_at_local  the same instant on the wall clock of the reporting time zone
--   local_date     the date of sent_at_local
--   from_number,   sender and recipient as the API gives them (digits)
--   to_number
--   direction      the API's type as given (the values are not documented)
--   status         as the API gives it (received, sent, failed, ...)
--   is_failed      status is failed
--   pages          the number of pages (0 when unknown)
--   file_name      the PDF's name as the API gives it (filename)
--   file_route     the API path of the PDF (/faxes/<id>.pdf)
with source as (
    select * from voipstudio.faxes
    where deleted_at is null
),

renamed as (
    select
        account,
        id as fax_id,
        created_at at time zone 'UTC' as sent_at_utc,
        created_at at time zone {{ reporting_timezone }} as sent_at_local,
        cast(created_at at time zone {{ reporting_timezone }} as date) as local_date,
        "from" as from_number,
        "to" as to_number,
        type as direction,
        status,
        coalesce(lower(status) = 'failed', false) as is_failed,
        coalesce(pages, 0) as pages,
        filename as file_name,
        '/faxes/' || cast(id as varchar) || '.pdf' as file_route
    from source
)

select * from renamed
