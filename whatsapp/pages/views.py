"""Pages (docs/design.md, "Pages"): the end-user pairing page and the staff console.

Views stay thin: they resolve the link or the company, call one service, and render. The live
part of each page (status, QR, code) arrives over the WebSocket of docs/design.md, "Events".
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST, require_safe

from whatsapp.errors import ServiceError
from whatsapp.models import AttemptMethod, Company, PairingAttempt, SessionStatus
from whatsapp.pages import texts
from whatsapp.selectors import credentials_status, session_snapshot
from whatsapp.services.actors import Actor
from whatsapp.services.linking import (
    credentials_reset,
    pairing_code_request,
    session_reconnect,
    session_start,
)
from whatsapp.services.links import LinkInvalid, pairing_link_resolve
from whatsapp.services.links import pairing_link_create as link_create_service
from whatsapp.services.state import session_get

LINK_LIFETIMES = (
    (3600, gettext_lazy("valid for 1 hour")),
    (86400, gettext_lazy("valid for 24 hours")),
    (7 * 86400, gettext_lazy("valid for 7 days")),
)
CONSOLE_PAGE_SIZE = 50
METHOD_LABELS = {
    AttemptMethod.QR: gettext_lazy("QR code"),
    AttemptMethod.CODE: gettext_lazy("Pairing code"),
    AttemptMethod.RESET: gettext_lazy("Reset"),
}


def with_lang_param(view: Callable) -> Callable:
    """`?lang=ru` switches the language for this page and remembers it in the language cookie,
    so a link can be sent already in the reader's language."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        lang = request.GET.get("lang", "")
        if lang not in dict(settings.LANGUAGES):
            return view(request, *args, **kwargs)
        with translation.override(lang):
            request.LANGUAGE_CODE = lang
            response = view(request, *args, **kwargs)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            lang,
            max_age=365 * 86400,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
        response.headers["Content-Language"] = lang
        return response

    return wrapper


def _page_config(*, ws_path: str, request: HttpRequest, **extra) -> dict:
    return {
        "ws_path": ws_path,
        "server_now": time.time(),
        "lang": translation.get_language(),
        "sandbox": settings.WHATSAPP_BACKEND == "sandbox",
        "catalog": texts.js_catalog(),
        **extra,
    }


# --- end users -------------------------------------------------------------------------------


@require_safe
@with_lang_param
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.user.is_staff:
        return redirect("console")
    return render(request, "pages/home.html")


@require_safe
@with_lang_param
def pair_page(request: HttpRequest, link_token: str) -> HttpResponse:
    try:
        link = pairing_link_resolve(link_token)
    except LinkInvalid as invalid:
        return _link_invalid(request, invalid.reason)
    session = session_get(link.company)
    snapshot = session_snapshot(session)
    config = _page_config(
        ws_path=f"/ws/v1/pair/{link_token}/",
        request=request,
        mode="pair",
        link_token=link_token,
        snapshot=snapshot,
        sandbox_phone_url="/api/v1/sandbox/phone/link/",
    )
    response = render(
        request,
        "pages/pair.html",
        {
            "company": link.company,
            "snapshot": snapshot,
            "status_label": texts.status_label(snapshot["status"]),
            "status_sentence": texts.STATUS_SENTENCES.get(snapshot["status"], ""),
            "link_expires_at": link.expires_at,
            "page_config": config,
        },
    )
    # The token is a credential for this company's linking: keep it out of Referer headers sent
    # to other sites ("no-referrer" would also make the browser send `Origin: null` on our own
    # forms, which the CSRF check rejects).
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _link_invalid(request: HttpRequest, reason: str) -> HttpResponse:
    titles = {
        "expired": _("This pairing link has expired"),
        "revoked": _("This pairing link was withdrawn"),
        "invalid": _("This pairing link does not work"),
    }
    explanations = {
        "expired": _("Pairing links work for a limited time, to keep your WhatsApp safe."),
        "revoked": _("Your administrator replaced it with a newer link."),
        "invalid": _("The address may be incomplete: check that you copied the whole link."),
    }
    # 410 Gone for links that existed; 404 for anything we cannot read at all.
    status = 404 if reason == "invalid" else 410
    return render(
        request,
        "pages/link_invalid.html",
        {
            "reason": reason,
            "title": titles.get(reason, titles["invalid"]),
            "explanation": explanations.get(reason, explanations["invalid"]),
        },
        status=status,
    )


# --- staff console ---------------------------------------------------------------------------


def _console_companies(request: HttpRequest):
    companies = Company.objects.select_related("session").order_by("name", "slug")
    query = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    if query:
        companies = companies.filter(
            Q(name__icontains=query)
            | Q(slug__icontains=query)
            | Q(session__linked_phone__icontains=query)
        )
    if status in SessionStatus.values:
        if status == SessionStatus.DISCONNECTED:
            # A company whose session row does not exist yet is not linked either.
            companies = companies.filter(Q(session__status=status) | Q(session__isnull=True))
        else:
            companies = companies.filter(session__status=status)
    else:
        status = ""
    paginator = Paginator(companies, CONSOLE_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    rows = []
    for company in page.object_list:
        session = getattr(company, "session", None)
        code = session.status if session else SessionStatus.DISCONNECTED
        rows.append(
            {
                "company": company,
                "session": session,
                "status": code,
                "status_label": texts.status_label(code),
                "error": texts.error_sentence(session.last_error_code)
                if session and session.last_error_code
                else "",
            }
        )
    return {"rows": rows, "page": page, "query": query, "status": status}


@staff_member_required
@with_lang_param
def console_index(request: HttpRequest) -> HttpResponse:
    context = _console_companies(request)
    if request.GET.get("partial") == "rows":
        # Polled by the console script: the same rows, re-rendered, no layout around them.
        response = render(request, "console/_rows.html", context)
        response.headers["Cache-Control"] = "no-store"
        return response
    context["statuses"] = [(value, texts.status_label(value)) for value in SessionStatus.values]
    return render(request, "console/index.html", context)


@staff_member_required
@with_lang_param
def console_company(request: HttpRequest, slug: str) -> HttpResponse:
    company = get_object_or_404(Company, slug=slug)
    session = session_get(company)
    snapshot = session_snapshot(session)
    new_link = request.session.pop("console_new_link", None)
    if new_link and new_link.get("slug") != company.slug:
        new_link = None
    attempts = list(
        PairingAttempt.objects.filter(company=company).order_by("-started_at", "-id")[:50]
    )
    for attempt in attempts:
        attempt.method_label = METHOD_LABELS.get(attempt.method, attempt.method)  # type: ignore[attr-defined,call-overload]
    config = _page_config(
        ws_path=f"/ws/v1/companies/{company.slug}/",
        request=request,
        mode="console",
        snapshot=snapshot,
    )
    return render(
        request,
        "console/company.html",
        {
            "company": company,
            "session": session,
            "snapshot": snapshot,
            "status_label": texts.status_label(snapshot["status"]),
            "status_sentence": texts.STATUS_SENTENCES.get(snapshot["status"], ""),
            "last_error": texts.error_sentence(session.last_error_code)
            if session.last_error_code
            else "",
            "attempts": attempts,
            "new_link": new_link,
            "link_lifetimes": LINK_LIFETIMES,
            "page_config": config,
        },
    )


def _service_error(request: HttpRequest, error: ServiceError) -> None:
    retry_after = error.retry_after or (error.details or {}).get("retry_after")
    messages.error(
        request, f"{texts.error_sentence(error.code, retry_after)} ({error.code}: {error.message})"
    )


def _console_action(view: Callable) -> Callable:
    """A console POST: staff only, the company by slug, service errors shown as messages, and
    always back to the company page."""

    @staff_member_required
    @require_POST
    @functools.wraps(view)
    def wrapper(request: HttpRequest, slug: str) -> HttpResponse:
        company = get_object_or_404(Company, slug=slug)
        try:
            view(request, company, Actor.for_user(request.user))
        except ServiceError as error:
            _service_error(request, error)
        return redirect("console-company", slug=company.slug)

    return wrapper


@_console_action
def console_start(request: HttpRequest, company: Company, actor: Actor) -> None:
    session = session_start(company=company, actor=actor)
    messages.success(
        request,
        _("Linking started: status is now “%(status)s”.")
        % {"status": texts.status_label(session.status)},
    )


@_console_action
def console_pairing_code(request: HttpRequest, company: Company, actor: Actor) -> None:
    code = pairing_code_request(
        company=company,
        phone_number=request.POST.get("phone_number", ""),
        actor=actor,
        replace_existing=bool(request.POST.get("replace_existing")),
    )
    messages.success(
        request,
        _("Pairing code %(code)s for %(phone)s, valid for %(seconds)s s.")
        % {"code": code.pairing_code, "phone": code.phone_number, "seconds": code.expires_in},
    )


@_console_action
def console_reconnect(request: HttpRequest, company: Company, actor: Actor) -> None:
    session = session_reconnect(company=company, actor=actor)
    messages.success(
        request,
        _("Reconnect requested: status is now “%(status)s”.")
        % {"status": texts.status_label(session.status)},
    )


@_console_action
def console_pairing_link(request: HttpRequest, company: Company, actor: Actor) -> None:
    try:
        expires_in = int(request.POST.get("expires_in") or settings.PAIRING_LINK_TTL)
    except ValueError:
        expires_in = settings.PAIRING_LINK_TTL
    link = link_create_service(company=company, actor=actor, expires_in=expires_in)
    request.session["console_new_link"] = {
        "slug": company.slug,
        "url": link.url,
        "expires_at": link.expires_at.isoformat(),
    }
    messages.success(
        request, _("Pairing link created. Send it to the person who will link the phone.")
    )


@staff_member_required
@with_lang_param
def console_reset(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: what will be removed; POST: remove it."""
    company = get_object_or_404(Company, slug=slug)
    if request.method == "POST":
        try:
            credentials_reset(company=company, actor=Actor.for_user(request.user))
        except ServiceError as error:
            _service_error(request, error)
        else:
            messages.success(
                request,
                _("WhatsApp credentials of %(company)s were removed.") % {"company": company.name},
            )
        return redirect("console-company", slug=company.slug)
    session = session_get(company)
    return render(
        request,
        "console/reset_confirm.html",
        {
            "company": company,
            "session": session,
            "credentials": credentials_status(company),
        },
    )
