-- What soranb keeps per job besides the original columns. Every soranb project applies this,
-- single-user or not; it depends on nothing from the per-user hardening.

alter table public.video_generations
    add column if not exists progress integer not null default 0,
    add column if not exists thumbnail_url text,       -- object key in the video bucket (thumbnails/<id>.webp)
    add column if not exists remixed_from text,        -- record id of the source video of a remix
    add column if not exists lease_owner text,         -- which soranb service is downloading this job
    add column if not exists lease_expires_at timestamptz;

do $$
begin
    if not exists (
        select 1 from pg_constraint
        where conname = 'video_generations_progress_check'
          and conrelid = 'public.video_generations'::regclass
    ) then
        alter table public.video_generations
            add constraint video_generations_progress_check check (progress between 0 and 100);
    end if;
end;
$$;

-- A restarted service asks for the open jobs, oldest first.
create index if not exists video_generations_open_jobs_idx
    on public.video_generations (created_at)
    where status in ('pending', 'processing');

-- Taking or renewing a lease is bookkeeping, not a change of the generation: keep updated_at.
-- (A table-specific function, so a shared update_updated_at_column() elsewhere stays untouched.)
create or replace function public.soranb_video_generations_touch()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if (to_jsonb(new) - 'lease_owner' - 'lease_expires_at' - 'updated_at')
       = (to_jsonb(old) - 'lease_owner' - 'lease_expires_at' - 'updated_at') then
        new.updated_at = old.updated_at;
    else
        new.updated_at = now();
    end if;
    return new;
end;
$$;

create or replace trigger update_video_generations_updated_at
    before update on public.video_generations
    for each row execute function public.soranb_video_generations_touch();
