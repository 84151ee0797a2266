-- Calls of the accounts per day of the period and outcome (the stacked daily chart).
select call_date, outcome, count(*)
from {ds}.fct_calls
where account in ({accounts}) and call_date between $start and $end
group by call_date, outcome
order by call_date, outcome
