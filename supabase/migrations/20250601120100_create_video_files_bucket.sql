-- The bucket for videos and their thumbnails (public: a single-user project plays them by URL).

insert into storage.buckets (id, name, public)
values ('video_files', 'video_files', true)
on conflict (id) do nothing;

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
