"""The exception tree is documented in one place and every error says what to change."""

from __future__ import annotations

import inspect

import soranb.errors as errors


def test_all_is_sorted_and_complete():
    classes = {name for name, obj in vars(errors).items() if inspect.isclass(obj) and issubclass(obj, Exception)}
    assert errors.__all__ == sorted(errors.__all__)
    assert set(errors.__all__) == classes


def test_every_error_is_a_soranb_error_and_drawn_in_the_module_docstring():
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.SoranbError)
        assert f" {name} " in doc.replace("──", " ")


def test_record_not_found_reads_as_a_sentence():
    assert str(errors.RecordNotFound("no record 'x' here")) == "no record 'x' here"
