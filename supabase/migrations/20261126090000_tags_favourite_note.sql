-- Tags, a favourite flag and a note per generation: what a person adds while exploring prompts.
-- Every soranb project applies this, single-user or per-user, after
-- 20250601120000_create_video_generations.sql; it may come before or after the other files and
-- may be applied again.
--
-- Safe under row-level security: it adds columns only. It creates, drops and changes no policy and
-- grants nothing, so who may read or change a row (its owner alone on a per-user project) is exactly
-- what it was; the table's grants and policies cover these columns as they cover the others.

do $$
begin
    if to_regclass('public.video_generations') is null then
        raise exception 'public.video_generations does not exist yet: apply '
            '20250601120000_create_video_generations.sql first, then this file';
    end if;
end;
$$;

alter table public.video_generations
    add column if not exists tags text[] not null default '{}',     -- e.g. {"fox","night shots"}
    add column if not exists favourite boolean not null default false,
    add column if not exists note text;

-- `soranb list --tag T` and the history's filters ask for rows carrying a tag, or the favourites.
create index if not exists video_generations_tags_idx on public.video_generations using gin (tags);
create index if not exists video_generations_favourite_idx
    on public.video_generations (created_at)
    where favourite;
