"""Every sentence the pages show for a status or an error code, in one place.

The templates, the admin and the page JavaScript (through a JSON catalog embedded in the page)
read these, so an error code is explained the same way everywhere and is translated once.
A `{wait}` placeholder is filled with the Retry-After time ("15 min", "2 h") when the
server gives one.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class ErrorText:
    sentence: Promise
    next_step: Promise
    # The next step when the server said how long to wait (Retry-After / details.retry_after).
    next_step_timed: Promise | None = None
    # Which helpful button the pairing page offers with it: "qr", "code", "retry" or "".
    offer: str = "retry"


STATUS_LABELS: dict[str, Promise] = {
    "disconnected": pgettext_lazy("status", "Not linked"),
    "connecting": pgettext_lazy("status", "Connecting"),
    "qr_ready": pgettext_lazy("status", "QR code ready"),
    "code_ready": pgettext_lazy("status", "Code ready"),
    "authenticated": pgettext_lazy("status", "Finishing"),
    "connected": pgettext_lazy("status", "Connected"),
    "reconnecting": pgettext_lazy("status", "Reconnecting"),
    "logged_out": pgettext_lazy("status", "Logged out"),
    "failed": pgettext_lazy("status", "Failed"),
}

STATUS_SENTENCES: dict[str, Promise] = {
    "disconnected": _("WhatsApp is not linked yet. Get a code or scan a QR code to link it."),
    "connecting": _("Connecting to WhatsApp…"),
    "qr_ready": _("The QR code is ready: scan it with your phone."),
    "code_ready": _("The code is ready: enter it on your phone."),
    "authenticated": _("Your phone accepted the link. Finishing…"),
    "connected": _("WhatsApp is connected. You can close this page."),
    "reconnecting": _("WhatsApp is linked and reconnecting after a short interruption…"),
    "logged_out": _("The phone removed this linked device. Link it again to continue."),
    "failed": _("Linking failed."),
}

# The error codes of docs/design.md ("Errors"), NO_CREDENTIALS, the status reasons, and the socket's own reasons.
ERROR_TEXTS: dict[str, ErrorText] = {
    "VALIDATION_ERROR": ErrorText(
        _("Something in the request was not right."),
        _("Check what you typed and try again."),
    ),
    "INVALID_PHONE": ErrorText(
        _("This phone number does not look right."),
        _(
            "Type the full number with the country code, for example +7 900 123-45-67 or "
            "+1 415 555 2671."
        ),
        offer="",
    ),
    "NOT_AUTHENTICATED": ErrorText(
        _("This page is no longer allowed to link WhatsApp."),
        _("Ask your administrator for a new pairing link."),
        offer="",
    ),
    "PERMISSION_DENIED": ErrorText(
        _("This pairing link is not allowed to do that."),
        _("Ask your administrator to do it for you."),
        offer="",
    ),
    "COMPANY_NOT_FOUND": ErrorText(
        _("This company could not be found."),
        _("Ask your administrator for a new pairing link."),
        offer="",
    ),
    "ALREADY_CONNECTED": ErrorText(
        _("WhatsApp is already connected with this phone number."),
        _("There is nothing more to do: you can close this page."),
        offer="",
    ),
    "CREDENTIALS_CONFLICT": ErrorText(
        _("This company is already linked to another phone number."),
        _("Ask your administrator to reset the WhatsApp link, then try again."),
        offer="",
    ),
    "NOT_PAIRING": ErrorText(
        _("No QR code is being shown right now."),
        _("Press “Show QR code” to get a new one."),
        offer="qr",
    ),
    "NO_CREDENTIALS": ErrorText(
        _("There is no linked WhatsApp account to reconnect."),
        _("Link the phone first, with a code or a QR code."),
        offer="code",
    ),
    "RATE_LIMITED": ErrorText(
        _("Too many attempts for this number right now."),
        _("Wait a few minutes and try again, or link with the QR code instead."),
        _("Wait {wait} and try again, or link with the QR code instead."),
        offer="qr",
    ),
    "CONNECTION_CLOSED": ErrorText(
        _("WhatsApp closed the connection."),
        _("Try again in a minute, or link with the QR code instead."),
        offer="qr",
    ),
    "WHATSAPP_UNAVAILABLE": ErrorText(
        _("WhatsApp cannot be reached right now."),
        _("Wait a few minutes and try again."),
        _("Wait {wait} and try again."),
    ),
    "WORKER_UNAVAILABLE": ErrorText(
        _("The service is busy and could not take your request."),
        _("Wait a minute and try again. If it keeps happening, tell your administrator."),
        _("Wait {wait} and try again. If it keeps happening, tell your administrator."),
    ),
    "TIMEOUT": ErrorText(
        _("WhatsApp did not answer in time."),
        _("Try again. If it keeps happening, link with the QR code instead."),
        offer="qr",
    ),
    "INTERNAL_ERROR": ErrorText(
        _("Something went wrong on our side."),
        _("Try again in a minute. If it keeps happening, tell your administrator."),
    ),
    "PAIRING_EXPIRED": ErrorText(
        _("The code or QR code expired before the phone used it."),
        _("Get a new one and use it within about two minutes."),
    ),
    "LOGGED_OUT": ErrorText(
        _("The phone removed this linked device, or the link was reset."),
        _("Link it again with a new code or QR code."),
    ),
    "STREAM_REPLACED": ErrorText(
        _("This WhatsApp link was opened somewhere else, so this connection was closed."),
        _("Ask your administrator to reconnect it."),
        offer="",
    ),
    "TEMPORARILY_BANNED": ErrorText(
        _("WhatsApp has temporarily blocked this account from linked devices."),
        _(
            "Wait until the block ends (often a few hours), then ask your administrator to "
            "reconnect."
        ),
        _("Wait {wait} until the block ends, then ask your administrator to reconnect."),
        offer="",
    ),
    "CLIENT_OUTDATED": ErrorText(
        _("WhatsApp says this service's version is outdated."),
        _("Ask your administrator to update the service."),
        offer="",
    ),
    "ACCOUNT_LOCKED": ErrorText(
        _("WhatsApp has locked this account, so it cannot be linked now."),
        _("Open WhatsApp on the phone and follow its instructions, then link again."),
        offer="",
    ),
    "ACCOUNT_BANNED": ErrorText(
        _("WhatsApp has banned this account from linked devices."),
        _("Open WhatsApp on the phone to see why; this service cannot link it."),
        offer="",
    ),
    "PASSKEY_REQUIRED": ErrorText(
        _("WhatsApp asked the phone to confirm with a passkey, which this service cannot do."),
        _(
            "On the phone, allow linking without a passkey (or remove the passkey in WhatsApp's "
            "settings), then start again."
        ),
    ),
    "CONNECT_FAILURE": ErrorText(
        _("Could not connect to WhatsApp."),
        _(
            "Wait a few minutes and try again. If it keeps failing, ask your administrator to "
            "reset the link."
        ),
    ),
    "CANCELLED": ErrorText(
        _("The linking attempt was cancelled."),
        _("Start again when you are ready."),
    ),
    "CREDENTIALS_RESET": ErrorText(
        _("Your administrator removed the WhatsApp link."),
        _("Link the phone again with a new code or QR code."),
    ),
    "LINK_INVALID": ErrorText(
        _("This pairing link is no longer valid."),
        _("Ask your administrator for a new pairing link."),
        offer="",
    ),
}

UNKNOWN_ERROR = ErrorText(
    _("Something unexpected happened."),
    _("Try again. If it keeps happening, tell your administrator."),
)


def error_text(code: str | None) -> ErrorText:
    return ERROR_TEXTS.get(code or "", UNKNOWN_ERROR)


def wait_text(seconds: int) -> str:
    """Retry-After as people say it: minutes up to an hour and a half, then hours."""
    minutes = max(1, -(-int(seconds) // 60))
    if minutes < 90:
        return str(UI_TEXTS["wait_minutes"]).format(n=minutes)
    return str(UI_TEXTS["wait_hours"]).format(n=-(-minutes // 60))


def error_sentence(code: str | None, retry_after: int | None = None) -> str:
    """The sentence and the next step, for server-rendered pages and the admin."""
    text = error_text(code)
    if retry_after and text.next_step_timed:
        next_step = str(text.next_step_timed).format(wait=wait_text(retry_after))
    else:
        next_step = str(text.next_step)
    return f"{text.sentence} {next_step}"


# Strings only the page JavaScript shows.
UI_TEXTS: dict[str, Promise] = {
    "copy": _("Copy"),
    "copied": _("Copied"),
    "copy_failed": _("Select the code and copy it by hand."),
    "code_expires_in": _("The code expires in {time}"),
    "code_expired": _("This code has expired."),
    "qr_expires_in": _("A new QR code in {time}"),
    "qr_expired": _("This QR code has expired."),
    "waiting_qr": _("Preparing the QR code…"),
    "waiting_code": _("Asking WhatsApp for a code…"),
    "socket_connecting": _("Connecting to the server…"),
    "socket_lost": _("Connection to the server lost. Retrying in {seconds} s…"),
    "socket_back": _("Connected to the server again."),
    "connected_as": _("Connected as {phone}"),
    "status_now": _("Status: {status}"),
    "code_for": _("Code for {phone}"),
    "new_code": _("Get a new code"),
    "get_code": _("Get code"),
    "new_qr": _("Show a new QR code"),
    "phone_required": _("Enter your phone number first."),
    "phone_national": _("Start with + and the country code, for example +7 900 123-45-67."),
    "phone_country": _("Country: {country}"),
    "phone_country_unknown": _("Start with + and your country code."),
    "simulating": _("The simulated phone is linking…"),
    "simulate_failed": _("The simulated phone could not link: {error}"),
    "details": _("Details"),
    "qr_alt": _("QR code to scan with WhatsApp on your phone"),
    "wait_minutes": _("{n} min"),
    "wait_hours": _("{n} h"),
}


def js_catalog() -> dict:
    """Everything the page script needs, translated into the active language."""
    return {
        "status_labels": {key: str(value) for key, value in STATUS_LABELS.items()},
        "status_sentences": {key: str(value) for key, value in STATUS_SENTENCES.items()},
        "errors": {
            code: {
                "sentence": str(text.sentence),
                "next": str(text.next_step),
                "next_timed": str(text.next_step_timed) if text.next_step_timed else "",
                "offer": text.offer,
            }
            for code, text in {**ERROR_TEXTS, "UNKNOWN": UNKNOWN_ERROR}.items()
        },
        "ui": {key: str(value) for key, value in UI_TEXTS.items()},
    }


def status_label(status: str) -> str:
    label = STATUS_LABELS.get(status)
    return str(label) if label else gettext("Unknown")
