-- Lineage: which record a video was extended or edited from, as '<kind>:<record id>' with kind
-- 'extend' or 'edit' (a remix keeps its own column, remixed_from). Every soranb project applies this,
-- single-user or per-user, in any order after the table file, as often as it likes.
--
-- Row-level security is unchanged: a new column is covered by the table's existing policies and
-- grants (per-user projects still see and change only their own rows), and the check below keeps a
-- row from holding anything but that shape, so no text in it can become a path or a URL.

alter table public.video_generations
    add column if not exists lineage text;

do $$
begin
    if not exists (
        select 1 from pg_constraint
        where conname = 'video_generations_lineage_check'
          and conrelid = 'public.video_generations'::regclass
    ) then
        alter table public.video_generations
            add constraint video_generations_lineage_check
            check (lineage is null or lineage ~ '^(extend|edit):[A-Za-z0-9_-]{1,64}$');
    end if;
end;
$$;
