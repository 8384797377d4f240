import pickle

import pytest

from whatsapp import errors

DOCUMENTED_CODES = {
    "VALIDATION_ERROR": 400,
    "INVALID_PHONE": 400,
    "NOT_AUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "COMPANY_NOT_FOUND": 404,
    "ALREADY_CONNECTED": 409,
    "CREDENTIALS_CONFLICT": 409,
    "NOT_PAIRING": 409,
    "RATE_LIMITED": 429,
    "CONNECTION_CLOSED": 502,
    "WHATSAPP_UNAVAILABLE": 503,
    "WORKER_UNAVAILABLE": 503,
    "TIMEOUT": 504,
    "INTERNAL_ERROR": 500,
}


@pytest.mark.parametrize(("code", "status"), sorted(DOCUMENTED_CODES.items()))
def test_every_documented_code_has_one_error_class_with_its_http_status(code, status):
    cls = errors.ERRORS_BY_CODE[code]
    error = cls("human message", details={"x": 1})
    assert error.http_status == status
    assert errors.error_payload(error) == {
        "error_code": code,
        "error": "human message",
        "details": {"x": 1},
    }


def test_errors_survive_the_trip_between_processes():
    error = errors.RateLimited("slow down", retry_after=120, details={"retry_after": 120})
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is errors.RateLimited
    assert (copy.message, copy.retry_after, copy.details) == (
        "slow down",
        120,
        {"retry_after": 120},
    )


def test_an_unknown_code_becomes_internal_error():
    assert errors.error_from_code("NOPE").code == "INTERNAL_ERROR"


def test_an_error_payload_comes_back_as_the_same_error():
    error = errors.RateLimited("slow down", retry_after=120, details={"reason": "x"})
    copy = errors.error_from_payload(errors.error_payload(error))
    assert type(copy) is errors.RateLimited
    assert (copy.message, copy.retry_after, copy.details) == ("slow down", 120, {"reason": "x"})


@pytest.mark.parametrize("payload", [None, "oops", {"error_code": "NO_SUCH_CODE"}, {}])
def test_an_unreadable_error_payload_is_an_internal_error(payload):
    assert type(errors.error_from_payload(payload)) is errors.InternalError
