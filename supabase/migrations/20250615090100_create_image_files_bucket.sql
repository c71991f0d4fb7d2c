-- The bucket for input reference images.

insert into storage.buckets (id, name, public)
values ('image_files', 'image_files', true)
on conflict (id) do nothing;

drop policy if exists "image_files bucket is visible" on storage.buckets;
create policy "image_files bucket is visible" on storage.buckets
    for select to anon, authenticated using (id = 'image_files');

drop policy if exists "image_files public read" on storage.objects;
create policy "image_files public read" on storage.objects
    for select to anon, authenticated using (bucket_id = 'image_files');

drop policy if exists "image_files public insert" on storage.objects;
create policy "image_files public insert" on storage.objects
    for insert to anon, authenticated with check (bucket_id = 'image_files');

drop policy if exists "image_files public update" on storage.objects;
create policy "image_files public update" on storage.objects
    for update to anon, authenticated using (bucket_id = 'image_files') with check (bucket_id = 'image_files');

drop policy if exists "image_files public delete" on storage.objects;
create policy "image_files public delete" on storage.objects
    for delete to anon, authenticated using (bucket_id = 'image_files');
