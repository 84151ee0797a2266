-- The first day with calls of each account (that day itself may be only partly loaded).
select account, min(call_date) from {ds}.fct_calls where account in ({accounts}) group by account
