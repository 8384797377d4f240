import logging

from whatsapp.privacy import MaskPhonesFilter, mask_phone, mask_phones_in, sentry_before_send


def test_phones_are_masked_but_recognisable():
    assert mask_phone("+79001234567") == "+7900***4567"
    assert mask_phones_in("code for +7 900 123-45-67 issued") == "code for +7900***4567 issued"


def test_log_records_never_carry_a_full_phone():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "phone %s linked", ("+14155552671",), None
    )
    MaskPhonesFilter().filter(record)
    assert record.getMessage() == "phone +1415***2671 linked"


def test_sentry_events_are_scrubbed():
    event = {"message": "failed for 79001234567", "extra": {"phones": ["+14155552671"]}}
    assert sentry_before_send(event, {}) == {
        "message": "failed for +7900***4567",
        "extra": {"phones": ["+1415***2671"]},
    }


def test_ids_that_merely_contain_digits_stay_readable():
    assert mask_phones_in("worker vm-19855-08de9 started") == "worker vm-19855-08de9 started"
    assert (
        mask_phones_in("jid 79001234567:12@s.whatsapp.net") == "jid +7900***4567:12@s.whatsapp.net"
    )


def test_sentry_events_never_carry_an_api_key_from_a_url():
    event = {
        "request": {
            "url": "/ws/v1/companies/a/?token=wps_secret&x=1",
            "query_string": "token=wps_secret",
        }
    }
    assert sentry_before_send(event, {}) == {
        "request": {
            "url": "/ws/v1/companies/a/?token=[Filtered]&x=1",
            "query_string": "token=[Filtered]",
        }
    }


def test_tracebacks_in_logs_are_masked_too():
    try:
        raise ValueError("no device for 79001234567")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    MaskPhonesFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "79001234567" not in text and "+7900***4567" in text
