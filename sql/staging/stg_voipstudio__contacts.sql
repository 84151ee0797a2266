-- grain: one row per account and contact; key: (account, contact_id)
-- incremental: key (account, contact_id)
--
-- The contacts table as loaded (/contacts, replaced in full by every sync that loads it:
-- loaded when the resources setting or --resources names contacts), renamed. Only the fields
-- known from the API are used [doc].
--
--   full_name        first_name and last_name joined by a space (either may be missing)
--   group_name       the directory group (Customers, Colleagues, ...)
--   is_global        shared with the whole company (global); else the owner's personal contact
--   is_internal      a colleague's entry (internal)
--   related_user_id  the VoIPstudio user an internal contact stands for (rel_user_id)
--   owner_user_id    the user the contact belongs to (user_id)
--   created_at_text  created_at as the API wrote it (text: a dimension is loaded untyped)
with source as (
    select * from voipstudio.contacts
),

renamed as (
    select
        account,
        id as contact_id,
        first_name,
        last_name,
        trim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) as full_name,
        group_name,
        "global" as is_global,
        internal as is_internal,
        rel_user_id as related_user_id,
        user_id as owner_user_id,
        cast(created_at as varchar) as created_at_text
    from source
)

select * from renamed
