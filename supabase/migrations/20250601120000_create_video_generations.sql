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

-- Created only when missing: applied again later, this file must not replace the trigger that
-- 20260110090000_soranb_job_columns.sql installs.
do $$
begin
    if not exists (
        select 1 from pg_trigger
        where tgname = 'update_video_generations_updated_at'
          and tgrelid = 'public.video_generations'::regclass
    ) then
        create trigger update_video_generations_updated_at
            before update on public.video_generations
            for each row execute function public.update_updated_at_column();
    end if;
end;
$$;

-- A single-user project: whoever holds the project's key sees every row.
-- Multi-user projects also apply 20260110090100_harden_per_user.sql, which replaces these. On a table
-- that is already per-user (it has user_id), this file leaves the policies and grants alone, so
-- applying it again never re-opens a hardened project.
alter table public.video_generations enable row level security;

do $$
begin
    if exists (
        select 1 from information_schema.columns
        where table_schema = 'public' and table_name = 'video_generations' and column_name = 'user_id'
    ) then
        raise notice 'video_generations is per-user (harden_per_user applied): its policies stay as they are';
        grant select, insert, update, delete on table public.video_generations to authenticated;
        return;
    end if;

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
end;
$$;

grant all on table public.video_generations to service_role;
