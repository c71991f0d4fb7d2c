"""Record signatures: what they cover, and that rows signed by an earlier release still count."""

from __future__ import annotations

import hashlib
import hmac
import json

from soranb.provenance import SIGNATURE, is_signed_by, sign
from soranb.records import GenerationRecord

SECRET = b"\x01" * 32


def test_a_plain_record_signed_before_the_extra_fields_existed_still_counts_as_ours():
    record = GenerationRecord(prompt="a fox", model="sora-2", size="1280x720", seconds=4)
    what = [record.id, record.prompt, record.model, record.size, record.seconds, record.image_key, record.remixed_from]
    earlier = hmac.new(SECRET, json.dumps(what, ensure_ascii=False, separators=(",", ":")).encode(), hashlib.sha256)
    assert is_signed_by(SECRET, record.evolve(metadata={SIGNATURE: earlier.hexdigest()}))


def test_changing_what_a_record_is_or_costs_breaks_its_signature():
    record = sign(
        SECRET,
        GenerationRecord(
            prompt="it runs on",
            model="sora-2",
            size="1280x720",
            seconds=12,
            lineage="extend:5a0c7f54-7a8b-4c1f-9d7e-0b1f2e3d4c5b",
            metadata={"submit_once": True, "characters": ["char_abc"], "billed_seconds": 8, "note": "x"},
        ),
    )
    assert is_signed_by(SECRET, record)
    assert is_signed_by(SECRET, record.evolve(metadata={**record.metadata, "waiting_reason": "rate limited"}))
    for changed in (
        {key: value for key, value in record.metadata.items() if key != "submit_once"},
        {**record.metadata, "characters": ["char_other"]},
        {**record.metadata, "billed_seconds": 4},
    ):
        assert not is_signed_by(SECRET, record.evolve(metadata=changed))
    assert not is_signed_by(SECRET, record.evolve(lineage=None))
