"""Property-based conformance: every operation of the live schema, called in-process through
the WSGI app with a valid key, answers no 5xx and nothing the schema does not document."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, settings

from whatsapp.models import ApiKey, Company
from whatsapp.services.state import session_get


@pytest.fixture
def global_api_key(transactional_db) -> str:
    company = Company.objects.create(slug="alice", name="Alice's Salon")
    session_get(company)
    return ApiKey.issue(name="schemathesis", company=None)[1]


@pytest.fixture
def api_schema(global_api_key, worker, settings):
    # Enough budget for every generated call; the limits have tests of their own.
    settings.API_THROTTLE_WRITES_PER_MINUTE = 100_000
    settings.API_THROTTLE_READS_PER_MINUTE = 100_000
    return schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
def test_every_operation_conforms_to_the_schema(case, global_api_key):
    if case.path_parameters and case.meta and case.meta.generation.mode.is_positive:
        # Aim most calls at a real company; unknown slugs are covered by the isolation tests.
        case.path_parameters["slug"] = "alice"
    case.call_and_validate(headers={"Authorization": f"Bearer {global_api_key}"})
