-- test: users and queues have a unique, non-null id (skipped when they were not loaded)
select
    'stg_voipstudio__users' as model,
    cast(user_id as varchar) as key_value,
    count(*) as occurrences
from stg_voipstudio__users group by user_id having count(*) > 1 or user_id is null
union all
select 'stg_voipstudio__queues', cast(queue_id as varchar), count(*)
from stg_voipstudio__queues group by queue_id having count(*) > 1 or queue_id is null
