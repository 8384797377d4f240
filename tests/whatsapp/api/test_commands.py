"""`manage.py create_company` and `manage.py issue_api_key`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.whatsapp.api.helpers import client_with_key
from whatsapp.models import ApiKey, Company, WhatsAppSession


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_company_creates_it_with_a_session(db):
    out, _ = _run("create_company", "962302", "Dave's Deli")
    assert "962302" in out
    company = Company.objects.get(slug="962302")
    assert company.name == "Dave's Deli"
    assert WhatsAppSession.objects.filter(company=company).exists()


def test_create_company_refuses_a_taken_slug(alice):
    with pytest.raises(CommandError, match="already exists"):
        _run("create_company", "alice", "Again")


def test_create_company_refuses_a_bad_slug(db):
    with pytest.raises(CommandError, match="slug"):
        _run("create_company", "no spaces", "X")


def test_issue_api_key_prints_a_working_company_key_once(alice, bob):
    out, err = _run("issue_api_key", "--company", "alice", "--name", "crm")
    raw_key = out.strip()
    assert raw_key.startswith("wps_")
    assert "not shown again" in err
    key = ApiKey.objects.get()
    assert key.company == alice and key.name == "crm"
    assert raw_key not in (key.key_hash, key.prefix)
    client = client_with_key(raw_key)
    assert client.get("/api/v1/companies/alice/").status_code == 200
    assert client.get("/api/v1/companies/bob/").status_code == 404


def test_issue_api_key_global(alice, bob):
    raw_key = _run("issue_api_key", "--global")[0].strip()
    assert ApiKey.objects.get().is_global
    slugs = [
        c["slug"] for c in client_with_key(raw_key).get("/api/v1/companies/").json()["results"]
    ]
    assert slugs == ["alice", "bob"]


@pytest.mark.parametrize("args", [(), ("--company", "alice", "--global"), ("--company", "nobody")])
def test_issue_api_key_refuses_bad_arguments(alice, args):
    with pytest.raises(CommandError):
        _run("issue_api_key", *args)
