-- The history table: one row per video generation.
-- Safe to apply again: every statement is idempotent.

create table if not exists public.video_generations (
    id uuid primary key default gen_random_uuid(),
    prompt text not null,
    model text not null default 'sora-2',
    size text not null default '1280x720',
    seconds integer not null default 8,
    status text not null default 'pending',
    openai_job_id text,
    video_url text,            -- soranb keeps the object key here (videos/<id>.mp4); older rows may hold a URL
    error_message text,
    metadata jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint video_generations_status_check
        check (status in ('pending', 'processing', 'completed', 'failed', 'expired', 'cancelled'))
);

create index if not exists video_generations_status_idx on public.video_generations (status);
create index if not exists video_generations_created_at_idx on public.video_generations (created_at desc);

-- updated_at is the server's clock, whoever writes the row.
create or replace function public.update_updated_at_column()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at = now();
    return new;
end;
$$;

create or replace trigger update_video_generations_updated_at
    before update on public.video_generations
    for each row execute function public.update_updated_at_column();

-- A single-user project: whoever holds the project's key sees every row.
-- Multi-user projects must also apply the harden_per_user migration, which drops these.
alter table public.video_generations enable row level security;

drop policy if exists "Allow public read access" on public.video_generations;
create policy "Allow public read access" on public.video_generations
    for select to anon, authenticated using (true);

drop policy if exists "Allow public insert access" on public.video_generations;
create policy "Allow public insert access" on public.video_generations
    for insert to anon, authenticated with check (true);

drop policy if exists "Allow public update access" on public.video_generations;
create policy "Allow public update access" on public.video_generations
    for update to anon, authenticated using (true) with check (true);

drop policy if exists "Allow public delete access" on public.video_generations;
create policy "Allow public delete access" on public.video_generations
    for delete to anon, authenticated using (true);

-- New tables in public are not exposed to the API roles unless granted explicitly.
grant select, insert, update, delete on table public.video_generations to anon, authenticated;
grant all on table public.video_generations to service_role;
