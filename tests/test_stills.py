"""Stills are checked by their bytes: a gateway that answers the MP4 for every variant never leaves an
MP4 stored as a thumbnail; the card gets a thumbnail and a spritesheet made from the video instead."""

from __future__ import annotations

import io

from engine_helpers import FOX, drive
from PIL import Image

from soranb.records import Status
from soranb.sprites import Spritesheet


def _image(service, key: str) -> Image.Image:
    data = service.media_path(key).read_bytes()
    assert b"ftyp" not in data[:16]  # not an MP4 under a still's name
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_provider_that_answers_the_video_for_every_variant_still_gives_real_stills(make_service) -> None:
    service = make_service(variants=False)  # as LiteLLM's proxy does: `variant` is not passed on
    record = service.generate(FOX)
    drive(service)
    done = service.get(record.id)
    assert done.status == Status.COMPLETED
    thumbnail = _image(service, done.thumbnail_key)
    assert thumbnail.format == "WEBP" and thumbnail.width > 0
    sheet = Spritesheet.of(done)
    assert sheet is not None and sheet.frames == FOX.seconds
    grid = _image(service, sheet.key)
    assert grid.format == "JPEG" and sheet.columns * sheet.rows >= sheet.frames
    assert grid.width % sheet.columns == 0 and grid.height % sheet.rows == 0  # whole tiles, as the scrub reads them


def test_a_providers_own_stills_are_kept_when_they_are_images(make_service) -> None:
    service = make_service()
    record = service.generate(FOX)
    drive(service)
    done = service.get(record.id)
    assert _image(service, done.thumbnail_key).format == "WEBP"
    assert Spritesheet.of(done) is not None
