-- The input reference image of a generation (image-to-video).

alter table public.video_generations
    add column if not exists image_url text,       -- soranb keeps the object key here (images/<id>.png)
    add column if not exists image_filename text;  -- the name the user uploaded, shown escaped, never a path
