-- The chosen accounts that have calls.
select distinct account from voipstudio.agg_calls_daily where {accounts} order by account
