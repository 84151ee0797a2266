-- test: users and queues have a unique, non-null id within their account (skipped when they
-- were not loaded)
select
    'stg_voipstudio__users' as model,
    account || ' ' || cast(user_id as varchar) as key_value,
    count(*) as occurrences
from stg_voipstudio__users
group by account, user_id
having count(*) > 1 or account is null or user_id is null
union all
select 'stg_voipstudio__queues', account || ' ' || cast(queue_id as varchar), count(*)
from stg_voipstudio__queues
group by account, queue_id
having count(*) > 1 or account is null or queue_id is null
