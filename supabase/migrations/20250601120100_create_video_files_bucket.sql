-- The bucket for videos and their thumbnails.
-- Public for a single-user project (players use plain URLs). On a project that is already per-user
-- (video_generations has user_id), the bucket is created private and no public policy is added, so
-- applying this file again, or after the hardening, never re-opens the media.

do $$
declare
    per_user constant boolean := exists (
        select 1 from information_schema.columns
        where table_schema = 'public' and table_name = 'video_generations' and column_name = 'user_id'
    );
begin
    insert into storage.buckets (id, name, public)
    values ('video_files', 'video_files', not per_user)
    on conflict (id) do nothing;

    if per_user then
        raise notice 'video_generations is per-user (harden_per_user applied): video_files keeps its policies';
        return;
    end if;

    -- soranb reads the bucket's `public` flag to choose public or signed URLs.
    drop policy if exists "video_files bucket is visible" on storage.buckets;
    create policy "video_files bucket is visible" on storage.buckets
        for select to anon, authenticated using (id = 'video_files');

    drop policy if exists "video_files public read" on storage.objects;
    create policy "video_files public read" on storage.objects
        for select to anon, authenticated using (bucket_id = 'video_files');

    drop policy if exists "video_files public insert" on storage.objects;
    create policy "video_files public insert" on storage.objects
        for insert to anon, authenticated with check (bucket_id = 'video_files');

    drop policy if exists "video_files public update" on storage.objects;
    create policy "video_files public update" on storage.objects
        for update to anon, authenticated using (bucket_id = 'video_files') with check (bucket_id = 'video_files');

    drop policy if exists "video_files public delete" on storage.objects;
    create policy "video_files public delete" on storage.objects
        for delete to anon, authenticated using (bucket_id = 'video_files');
end;
$$;
