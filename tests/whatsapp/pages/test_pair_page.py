"""The end-user pairing page (docs/design.md, "Pages"): a valid link, and friendly pages for bad ones."""

from __future__ import annotations

import json
import time

import pytest
from django.core import signing
from django.urls import reverse

from tests.whatsapp.pages.helpers import path_of
from whatsapp.errors import ERRORS_BY_CODE, STATUS_REASONS
from whatsapp.pages import texts
from whatsapp.services import links
from whatsapp.services.actors import CLI
from whatsapp.services.links import pairing_link_create

pytestmark = pytest.mark.django_db


def page_config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="page-config" type="application/json">') + len(
        '<script id="page-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def expired_token(company) -> str:
    # Sign a link the way pairing_link_create does, with an expiry in the past.
    body = signing.b64_encode(f"{company.pk}:oldlink:{int(time.time()) - 60}".encode()).decode()
    return links._signer(company).sign(body)


def test_it_shows_the_company_and_the_linking_controls_for_a_valid_link(client, alice, alice_link):
    response = client.get(path_of(alice_link))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Alice&#x27;s Salon" in html
    assert 'type="tel"' in html and "Get code" in html
    assert "Link with phone number instead" in html
    assert response.headers["Referrer-Policy"] == "same-origin"
    config = page_config(response)
    assert config["ws_path"] == f"/ws/v1/pair/{alice_link.token}/"
    assert config["snapshot"]["status"] == "disconnected"


def test_the_url_is_named_pair_page(alice_link):
    assert reverse("pair-page", kwargs={"link_token": alice_link.token}) == path_of(alice_link)


def test_an_expired_link_gets_a_friendly_410_page(client, alice):
    response = client.get(reverse("pair-page", kwargs={"link_token": expired_token(alice)}))

    assert response.status_code == 410
    assert "This pairing link has expired" in response.content.decode()
    assert 'type="tel"' not in response.content.decode()


def test_a_revoked_link_gets_a_friendly_410_page(client, alice, alice_link):
    alice.rotate_link_secret()

    response = client.get(path_of(alice_link))

    assert response.status_code == 410
    assert "This pairing link was withdrawn" in response.content.decode()


@pytest.mark.parametrize("token", ["garbage", "bm90IGEgbGluaw:abc", "x" * 400])
def test_a_garbage_link_gets_a_friendly_404_page(client, token):
    response = client.get(f"/pair/{token}/")

    assert response.status_code == 404
    assert "This pairing link does not work" in response.content.decode()


def test_charlies_link_does_not_show_alices_company(client, alice, charlie):
    link = pairing_link_create(company=charlie, actor=CLI)

    html = client.get(path_of(link)).content.decode()

    assert "Charlie" in html and "Alice" not in html


def test_every_error_code_and_status_reason_has_a_sentence_and_a_next_step():
    codes = {*ERRORS_BY_CODE, *STATUS_REASONS, "NO_CREDENTIALS"}

    for code in codes:
        text = texts.ERROR_TEXTS.get(code)
        assert text is not None, code
        assert str(text.sentence) and str(text.next_step)


def test_the_page_catalog_carries_every_error_sentence(client, alice_link):
    catalog = page_config(client.get(path_of(alice_link)))["catalog"]

    assert set(texts.ERROR_TEXTS) <= set(catalog["errors"])
    assert catalog["errors"]["RATE_LIMITED"]["next_timed"].count("{wait}") == 1
    assert catalog["ui"]["wait_minutes"] == "{n} min" and catalog["ui"]["wait_hours"] == "{n} h"


def test_rate_limited_names_the_minutes_to_wait_when_retry_after_is_known():
    assert "Wait 3 min" in texts.error_sentence("RATE_LIMITED", retry_after=150)
    assert "Wait 2 h and try again" in texts.error_sentence("RATE_LIMITED", retry_after=7200)
    assert "Wait a few minutes" in texts.error_sentence("RATE_LIMITED")
    assert "QR code instead" in texts.error_sentence("RATE_LIMITED")


def test_the_sandbox_banner_and_phone_helper_show_only_in_sandbox_mode(
    client, alice_link, settings
):
    html = client.get(path_of(alice_link)).content.decode()
    assert "sandbox-banner" in html and "Simulate the phone" in html

    settings.WHATSAPP_BACKEND = "neonize"
    html = client.get(path_of(alice_link)).content.decode()
    assert "sandbox-banner" not in html and "Simulate the phone" not in html


def test_head_on_an_expired_link_answers_410_so_an_open_page_can_tell(client, alice):
    # The page script asks this when its socket is refused, to say "link expired" instead of
    # retrying forever.
    response = client.head(reverse("pair-page", kwargs={"link_token": expired_token(alice)}))

    assert response.status_code == 410
