-- The outbound destination that cost the most over everything loaded of the chosen accounts
-- (forwarded legs are outbound attempts of their own destination in agg_destination_monthly).
select destination, cost, talk_minutes, asr
from (
    select destination, sum(cost) as cost, sum(talk_minutes) as talk_minutes,
        cast(sum(answered_calls) as double) / nullif(sum(attempts), 0) as asr
    from voipstudio.agg_destination_monthly
    where direction = 'outbound' and {accounts}
    group by destination
) as by_destination
order by cost desc, destination
limit 1
