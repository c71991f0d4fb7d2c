"""The new lengths and sizes reach every place that offers or checks them from the one catalog:
the request rules, the price, the form's options and the CLI."""

from __future__ import annotations

from decimal import Decimal

import pytest

from soranb.catalog import MODELS, SECONDS, estimate_cost
from soranb.cli import main
from soranb.errors import RequestInvalid
from soranb.request import GenerationRequest, validate_request
from soranb.widgets import GenerationForm, Toasts


def test_requests_accept_16_and_20_seconds_and_1080p_on_sora_2_pro() -> None:
    validate_request(GenerationRequest("p", "sora-2-pro", "1920x1080", 20))
    validate_request(GenerationRequest("p", "sora-2", "1280x720", 16))
    with pytest.raises(RequestInvalid) as caught:
        validate_request(GenerationRequest("p", "sora-2", "1080x1920", 20))
    assert caught.value.field == "size" and "1080x1920" in str(caught.value)
    assert estimate_cost("sora-2-pro", "1080x1920", 20) == Decimal("14.00")


def test_the_form_offers_what_the_catalog_lists(service) -> None:
    form = GenerationForm(service, toasts=Toasts(dismiss_after=None))
    try:
        form.model.value = "sora-2-pro"
        assert {"1920x1080", "1080x1920"} <= {value for _label, value in form.size.options}
        assert [value for _label, value in form.seconds.options] == list(MODELS["sora-2-pro"].seconds)
        assert {16, 20} <= set(SECONDS)
    finally:
        form.close()


def test_the_cli_takes_20_seconds_and_1080p(cli_env, capsys) -> None:
    code = main(["generate", "a long pan", "--model", "sora-2-pro", "--size", "1920x1080", "--seconds", "20", "--json"])
    assert code == 0
    assert '"seconds": 20' in capsys.readouterr().out


def test_a_dated_snapshot_is_a_model_with_its_base_models_options_and_price(service) -> None:
    from widget_helpers import finish

    request = GenerationRequest("p", "sora-2-pro-2025-10-06", "1920x1080", 4)
    validate_request(request)
    assert request.cost == estimate_cost("sora-2-pro", "1920x1080", 4)
    with pytest.raises(RequestInvalid, match="sora-2-2025-12-08"):
        validate_request(GenerationRequest("p", "sora-3", "1280x720", 4))
    record = finish(service, service.generate(GenerationRequest("p", "sora-2-2025-12-08", "1280x720", 4)).id)
    assert (record.model, record.cost) == ("sora-2-2025-12-08", estimate_cost("sora-2", "1280x720", 4))
