-- The name and extension of each user of the accounts (the newest seen in agg_user_daily).
select account, user_id, max(user_name), max(extension)
from {ds}.agg_user_daily
where account in ({accounts})
group by account, user_id
