-- Per-user hardening for projects shared by several people: each user sees and changes only
-- their own rows and media. Apply it after 20250601120000_create_video_generations.sql; the other
-- files may come before or after it, and any file may be applied again: every order ends in the
-- same hardened state (docs/supabase.md lists the orders that are tested).
--
-- The file closes first and builds second: the permissive policies go before anything that could
-- fail, so even a run that stops half way (psql -f without ON_ERROR_STOP) never leaves the table open.
--
-- Rows written before this migration have no owner and become invisible to every user;
-- give them one with the service role, e.g.
--   update public.video_generations set user_id = '<uuid>' where user_id is null;
-- and move their objects under '<uuid>/'.
--
-- Anonymous sign-ins (role authenticated with the is_anonymous claim) get nothing: anyone holding
-- the anon key can create one, so they are not users whose rows or media soranb keeps.

do $$
begin
    if to_regclass('public.video_generations') is null then
        raise exception 'public.video_generations does not exist yet: apply '
            '20250601120000_create_video_generations.sql first, then this file';
    end if;
end;
$$;

-- 1. Close: signed-out callers lose the table, every permissive policy goes, whatever its name.

revoke all on table public.video_generations from anon;

alter table public.video_generations
    add column if not exists user_id uuid default auth.uid() references auth.users (id) on delete cascade,
    add column if not exists thumbnail_url text;
alter table public.video_generations alter column user_id set default auth.uid();

-- Policies are OR-ed: one permissive policy left behind (a name from the first migration, or one
-- added in the dashboard) would open every row again. The per-user ones are created again below.
do $$
declare
    p record;
begin
    for p in
        select policyname from pg_policies
        where schemaname = 'public' and tablename = 'video_generations' and permissive = 'PERMISSIVE'
    loop
        raise notice 'dropping policy % on public.video_generations', p.policyname;
        execute format('drop policy %I on public.video_generations', p.policyname);
    end loop;
    for p in
        select tablename, policyname from pg_policies
        where schemaname = 'storage' and tablename in ('objects', 'buckets') and permissive = 'PERMISSIVE'
          and (coalesce(qual, '') || ' ' || coalesce(with_check, '')) ~ '''(video_files|image_files)'''
    loop
        raise notice 'dropping policy % on storage.%', p.policyname, p.tablename;
        execute format('drop policy %I on storage.%I', p.policyname, p.tablename);
    end loop;
end;
$$;

-- Restrictive policies are AND-ed with every permissive one: whatever policy is added later (in the
-- dashboard, or by an old migration applied again), a row stays its owner's and the two buckets stay
-- per-user. service_role bypasses row-level security as before.
drop policy if exists "soranb rows are their owner's only" on public.video_generations;
create policy "soranb rows are their owner's only" on public.video_generations
    as restrictive for all to public
    using (user_id = (select auth.uid())
           and not coalesce(((select auth.jwt()) ->> 'is_anonymous')::boolean, false))
    with check (user_id = (select auth.uid())
                and not coalesce(((select auth.jwt()) ->> 'is_anonymous')::boolean, false));

drop policy if exists "soranb media is its owner's only" on storage.objects;
create policy "soranb media is its owner's only" on storage.objects
    as restrictive for all to public
    using (bucket_id is distinct from 'video_files' and bucket_id is distinct from 'image_files'
           or ((storage.foldername(name))[1] = (select auth.uid()::text)
               and not coalesce(((select auth.jwt()) ->> 'is_anonymous')::boolean, false)))
    with check (bucket_id is distinct from 'video_files' and bucket_id is distinct from 'image_files'
                or ((storage.foldername(name))[1] = (select auth.uid()::text)
                    and not coalesce(((select auth.jwt()) ->> 'is_anonymous')::boolean, false)));

drop policy if exists "soranb buckets are hidden from signed-out callers" on storage.buckets;
create policy "soranb buckets are hidden from signed-out callers" on storage.buckets
    as restrictive for all to public
    using (id is distinct from 'video_files' and id is distinct from 'image_files'
           or ((select auth.uid()) is not null
               and not coalesce(((select auth.jwt()) ->> 'is_anonymous')::boolean, false)));

-- Private buckets: media is played through signed URLs, stored under '<user id>/...'.
update storage.buckets set public = false where id in ('video_files', 'image_files');

-- 2. One row per provider job, so a retried insert can never record a job twice. The first
-- migrations allowed duplicates; the unique index below cannot be built over them. Keep the row that
-- got furthest (completed with a video, else the oldest) and turn every other one into a row that
-- points at it: nothing is deleted, the job id moves to metadata, and an open duplicate becomes
-- failed so no service polls or bills that job twice.
with ranked as (
    select id,
           openai_job_id,
           first_value(id) over same_job as keeper,
           row_number() over same_job as n
    from public.video_generations
    where openai_job_id is not null
    window same_job as (
        partition by openai_job_id
        order by (status = 'completed') desc, (video_url is not null) desc, created_at, id
    )
)
update public.video_generations v
set metadata = coalesce(v.metadata, '{}'::jsonb)
               || jsonb_build_object('duplicate_openai_job_id', r.openai_job_id, 'duplicate_of', r.keeper::text),
    openai_job_id = null,
    status = case when v.status in ('pending', 'processing') then 'failed' else v.status end,
    error_message = case
        when v.status in ('pending', 'processing')
            then format('record %s holds the same provider job %s; this copy was closed', r.keeper, r.openai_job_id)
        else v.error_message
    end
from ranked r
where v.id = r.id and r.n > 1;

create unique index if not exists video_generations_openai_job_id_key
    on public.video_generations (openai_job_id);
create index if not exists video_generations_user_id_created_at_idx
    on public.video_generations (user_id, created_at desc);

-- 3. Build: what a signed-in user may do with their own rows and media.

drop policy if exists "Users read their own generations" on public.video_generations;
create policy "Users read their own generations" on public.video_generations
    for select to authenticated using (user_id = (select auth.uid()));

drop policy if exists "Users insert their own generations" on public.video_generations;
create policy "Users insert their own generations" on public.video_generations
    for insert to authenticated with check (user_id = (select auth.uid()));

drop policy if exists "Users update their own generations" on public.video_generations;
create policy "Users update their own generations" on public.video_generations
    for update to authenticated
    using (user_id = (select auth.uid()))
    with check (user_id = (select auth.uid()));

drop policy if exists "Users delete their own generations" on public.video_generations;
create policy "Users delete their own generations" on public.video_generations
    for delete to authenticated using (user_id = (select auth.uid()));

grant select, insert, update, delete on table public.video_generations to authenticated;
grant all on table public.video_generations to service_role;

-- soranb reads the bucket's `public` flag (false here: signed URLs) as the signed-in user.
drop policy if exists "Users see the soranb buckets" on storage.buckets;
create policy "Users see the soranb buckets" on storage.buckets
    for select to authenticated using (id in ('video_files', 'image_files'));

drop policy if exists "Users read their own media" on storage.objects;
create policy "Users read their own media" on storage.objects
    for select to authenticated
    using (bucket_id in ('video_files', 'image_files')
           and (storage.foldername(name))[1] = (select auth.uid()::text));

drop policy if exists "Users upload their own media" on storage.objects;
create policy "Users upload their own media" on storage.objects
    for insert to authenticated
    with check (bucket_id in ('video_files', 'image_files')
                and (storage.foldername(name))[1] = (select auth.uid()::text));

drop policy if exists "Users update their own media" on storage.objects;
create policy "Users update their own media" on storage.objects
    for update to authenticated
    using (bucket_id in ('video_files', 'image_files')
           and (storage.foldername(name))[1] = (select auth.uid()::text))
    with check (bucket_id in ('video_files', 'image_files')
                and (storage.foldername(name))[1] = (select auth.uid()::text));

drop policy if exists "Users delete their own media" on storage.objects;
create policy "Users delete their own media" on storage.objects
    for delete to authenticated
    using (bucket_id in ('video_files', 'image_files')
           and (storage.foldername(name))[1] = (select auth.uid()::text));
