-- Per-user hardening for projects shared by several people: each user sees and changes only
-- their own rows and media. Apply after all the others.
--
-- Rows written before this migration have no owner and become invisible to every user;
-- give them one with the service role, e.g.
--   update public.video_generations set user_id = '<uuid>' where user_id is null;
-- and move their objects under '<uuid>/'.

alter table public.video_generations
    add column if not exists user_id uuid default auth.uid() references auth.users (id) on delete cascade,
    add column if not exists thumbnail_url text;
alter table public.video_generations alter column user_id set default auth.uid();

create index if not exists video_generations_user_id_created_at_idx
    on public.video_generations (user_id, created_at desc);
-- One row per provider job: a retried insert can never record a job twice.
create unique index if not exists video_generations_openai_job_id_key
    on public.video_generations (openai_job_id);

-- Policies are OR-ed: every permissive one must go, or it opens every row again.
drop policy if exists "Allow public read access" on public.video_generations;
drop policy if exists "Allow public insert access" on public.video_generations;
drop policy if exists "Allow public update access" on public.video_generations;
drop policy if exists "Allow public delete access" on public.video_generations;

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

-- Signed-out callers get nothing at all.
revoke all on table public.video_generations from anon;
grant select, insert, update, delete on table public.video_generations to authenticated;
grant all on table public.video_generations to service_role;

-- Private buckets: media is played through signed URLs, stored under '<user id>/...'.
update storage.buckets set public = false where id in ('video_files', 'image_files');

drop policy if exists "video_files public read" on storage.objects;
drop policy if exists "video_files public insert" on storage.objects;
drop policy if exists "video_files public update" on storage.objects;
drop policy if exists "video_files public delete" on storage.objects;
drop policy if exists "image_files public read" on storage.objects;
drop policy if exists "image_files public insert" on storage.objects;
drop policy if exists "image_files public update" on storage.objects;
drop policy if exists "image_files public delete" on storage.objects;

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
