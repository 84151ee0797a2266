-- The first day and the newest call of the accounts (what the data covers).
select min(call_date), max(started_at_local) from {ds}.fct_calls where account in ({accounts})
