-- grain: one row per account and VoIPstudio user; key: (account, user_id)
-- incremental: key (account, user_id)
--
-- The users table as loaded (replaced in full by every sync), renamed. Only the fields known
-- from the live API are used (id, first_name, last_name, email, ext, active, dnd), so the model
-- builds on any account; other fields stay in the raw table. User ids are only unique within
-- one account: two accounts can both have a user 100001.
--   full_name   first_name and last_name joined by a space (either may be missing)
with source as (
    select * from voipstudio.users
),

renamed as (
    select
        account,
        id as user_id,
        first_name,
        last_name,
        trim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) as full_name,
        email,
        ext as extension,
        active as is_active,
        dnd as is_do_not_disturb
    from source
)

select * from renamed
