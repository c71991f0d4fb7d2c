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
