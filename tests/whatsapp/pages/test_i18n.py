"""English and Russian (docs/design.md, "Pages"): browser language, ?lang=, and the set_language form."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.whatsapp.pages.helpers import path_of
from tests.whatsapp.pages.test_pair_page import expired_token, page_config

pytestmark = pytest.mark.django_db


def test_accept_language_ru_gives_the_russian_page(client, alice_link):
    response = client.get(path_of(alice_link), headers={"Accept-Language": "ru-RU,ru;q=0.9"})

    html = response.content.decode()
    assert '<html lang="ru">' in html
    assert "Получить код" in html
    assert "Связать по номеру телефона" in html


def test_the_russian_page_script_gets_russian_error_sentences(client, alice_link):
    response = client.get(path_of(alice_link), headers={"Accept-Language": "ru"})

    catalog = page_config(response)["catalog"]
    assert catalog["errors"]["RATE_LIMITED"]["sentence"].startswith("Слишком много")
    assert catalog["status_labels"]["connected"] == "Подключено"


def test_the_english_page_is_the_default(client, alice_link):
    html = client.get(path_of(alice_link)).content.decode()

    assert '<html lang="en">' in html and "Get code" in html


def test_lang_parameter_switches_and_is_remembered(client, alice_link):
    response = client.get(path_of(alice_link) + "?lang=ru", headers={"Accept-Language": "en"})

    assert "Получить код" in response.content.decode()
    assert response.cookies["django_language"].value == "ru"
    assert "Получить код" in client.get(path_of(alice_link)).content.decode()


def test_the_set_language_form_switches_language(client, alice_link):
    response = client.post(
        reverse("set_language"), {"language": "ru", "next": path_of(alice_link)}, follow=True
    )

    assert "Получить код" in response.content.decode()


def test_the_expired_link_page_is_translated_too(client, alice):
    response = client.get(
        reverse("pair-page", kwargs={"link_token": expired_token(alice)}),
        headers={"Accept-Language": "ru"},
    )

    assert response.status_code == 410
    assert "Срок действия ссылки истёк" in response.content.decode()
