"""Django admin (docs/design.md, "Pages"): companies with their WhatsApp status and the staff actions.

Actions call the same services as the API and the console, so auditing, events and locking are
never skipped; each one is also written to the admin log.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from whatsapp.errors import ServiceError
from whatsapp.models import (
    ApiKey,
    AuditEvent,
    Company,
    PairingAttempt,
    PhoneCooldown,
    SessionStatus,
    WhatsAppSession,
    Worker,
)
from whatsapp.pages import texts
from whatsapp.selectors import credentials_status
from whatsapp.services.actors import Actor
from whatsapp.services.linking import credentials_reset, session_reconnect
from whatsapp.services.links import pairing_link_create, pairing_links_revoke
from whatsapp.services.state import session_get


def _session(company: Company) -> WhatsAppSession | None:
    try:
        return company.session
    except WhatsAppSession.DoesNotExist:
        return None


def status_badge_html(status: str):
    return format_html(
        '<span class="badge badge--{}">{}</span>', status, texts.status_label(status)
    )


class StatusFilter(admin.SimpleListFilter):
    title = _("WhatsApp status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(value, texts.status_label(value)) for value in SessionStatus.values]

    def queryset(self, request, queryset):
        value = self.value()
        if value == SessionStatus.DISCONNECTED:
            # A company whose session row was never created is not linked either.
            return queryset.filter(Q(session__status=value) | Q(session__isnull=True))
        if value in SessionStatus.values:
            return queryset.filter(session__status=value)
        return queryset


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PairingAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PairingAttempt
    extra = 0
    ordering = ("-started_at", "-id")
    fields = (
        "started_at",
        "method",
        "phone",
        "started_by",
        "outcome",
        "error_code",
        "qr_rotations",
        "finished_at",
        "note",
    )
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = _("Pairing attempts (newest first)")


class AuditEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = AuditEvent
    extra = 0
    fields = ("created_at", "action", "actor", "detail")
    readonly_fields = fields
    verbose_name_plural = _("Other actions (links, reconnects, logouts)")


# The session's fields shown read-only on a company's page.
WHATSAPP_FIELDS = (
    "status_badge",
    "linked_phone",
    "linked_jid",
    "linked_at",
    "has_credentials",
    "last_error",
    "worker",
    "console_link",
)


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "status_badge", "linked_phone", "last_error", "status_since")
    list_filter = (StatusFilter,)
    list_select_related = ("session",)
    search_fields = ("name", "slug", "session__linked_phone")
    ordering = ("name", "slug")
    inlines = [PairingAttemptInline, AuditEventInline]
    actions = ["reset_credentials", "create_pairing_link", "reconnect", "revoke_pairing_links"]
    readonly_fields = ("created_at", *WHATSAPP_FIELDS)
    fieldsets = (
        (None, {"fields": ("slug", "name", "created_at")}),
        (
            _("WhatsApp"),
            {"fields": WHATSAPP_FIELDS},
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        # The slug is the public id in every integrator's URLs: fixed once created.
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "slug") if obj else fields

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": ("slug", "name")}),)
        return super().get_fieldsets(request, obj)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        session_get(obj)

    # --- columns ---------------------------------------------------------------------------

    @admin.display(description=_("Status"), ordering="session__status")
    def status_badge(self, obj: Company):
        session = _session(obj)
        return status_badge_html(session.status if session else SessionStatus.DISCONNECTED)

    @admin.display(description=_("Linked phone"), ordering="session__linked_phone")
    def linked_phone(self, obj: Company) -> str:
        session = _session(obj)
        return (session.linked_phone if session else "") or "—"

    @admin.display(description=_("Device JID"))
    def linked_jid(self, obj: Company) -> str:
        session = _session(obj)
        return (session.linked_jid if session else "") or "—"

    @admin.display(description=_("Linked at"))
    def linked_at(self, obj: Company):
        session = _session(obj)
        return session.linked_at if session and session.linked_at else "—"

    @admin.display(description=_("Has credentials"), boolean=True)
    def has_credentials(self, obj: Company) -> bool:
        session = _session(obj)
        return bool(session and session.has_credentials)

    @admin.display(description=_("Last error"))
    def last_error(self, obj: Company):
        session = _session(obj)
        if not session or not session.last_error_code:
            return "—"
        return format_html(
            '<code title="{}">{}</code>',
            texts.error_sentence(session.last_error_code),
            session.last_error_code,
        )

    @admin.display(description=_("Status since"), ordering="session__status_changed_at")
    def status_since(self, obj: Company):
        session = _session(obj)
        return session.status_changed_at if session else "—"

    @admin.display(description=_("Worker"))
    def worker(self, obj: Company) -> str:
        session = _session(obj)
        return (session.owner if session else "") or "—"

    @admin.display(description=_("Console"))
    def console_link(self, obj: Company):
        from django.urls import reverse

        return format_html(
            '<a href="{}">{}</a>',
            reverse("console-company", args=[obj.slug]),
            gettext("Open in the console"),
        )

    # --- actions ---------------------------------------------------------------------------

    @admin.action(description=_("Reset WhatsApp credentials"), permissions=["change"])
    def reset_credentials(self, request: HttpRequest, queryset: QuerySet[Company]):
        if request.POST.get("confirm") == "yes":
            done = 0
            for company in queryset:
                try:
                    audit = credentials_reset(company=company, actor=Actor.for_user(request.user))
                except ServiceError as error:
                    self._service_error(request, company, error)
                    continue
                self.log_change(
                    request, company, f"Reset WhatsApp credentials ({audit.note or 'cleared'})"
                )
                done += 1
            if done:
                self.message_user(
                    request,
                    gettext("WhatsApp credentials removed for %(count)d company(ies).")
                    % {"count": done},
                    messages.SUCCESS,
                )
            return None
        rows = []
        for company in queryset:
            session = session_get(company)
            rows.append(
                {
                    "company": company,
                    "session": session,
                    "credentials": credentials_status(company),
                    "status_badge": status_badge_html(session.status),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Reset WhatsApp credentials?"),
            "opts": self.model._meta,
            "rows": rows,
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/whatsapp/company/reset_confirmation.html", context)

    @admin.action(description=_("Create pairing link"), permissions=["change"])
    def create_pairing_link(self, request: HttpRequest, queryset: QuerySet[Company]):
        links = []
        for company in queryset:
            try:
                link = pairing_link_create(company=company, actor=Actor.for_user(request.user))
            except ServiceError as error:
                self._service_error(request, company, error)
                continue
            self.log_change(
                request,
                company,
                f"Created pairing link {link.link_id} "
                f"(expires {link.expires_at:%Y-%m-%d %H:%M} UTC)",
            )
            links.append((company.name, link.url, link.url))
        if links:
            self.message_user(
                request,
                format_html(
                    "{}<br>{}",
                    gettext(
                        "Pairing links created. Send each to the person who will link the phone:"
                    ),
                    format_html_join("<br>", '{}: <a href="{}">{}</a>', links),
                ),
                messages.SUCCESS,
            )

    @admin.action(description=_("Reconnect"), permissions=["change"])
    def reconnect(self, request: HttpRequest, queryset: QuerySet[Company]):
        done = 0
        for company in queryset:
            try:
                session_reconnect(company=company, actor=Actor.for_user(request.user))
            except ServiceError as error:
                self._service_error(request, company, error)
                continue
            self.log_change(request, company, "Reconnect requested")
            done += 1
        if done:
            self.message_user(
                request,
                gettext("Reconnect requested for %(count)d company(ies).") % {"count": done},
                messages.SUCCESS,
            )

    @admin.action(description=_("Revoke all pairing links"), permissions=["change"])
    def revoke_pairing_links(self, request: HttpRequest, queryset: QuerySet[Company]):
        for company in queryset:
            pairing_links_revoke(company=company, actor=Actor.for_user(request.user))
            self.log_change(request, company, "Revoked every pairing link issued so far")
        self.message_user(
            request,
            gettext(
                "Pairing links revoked: the links sent so far no longer open the pairing page."
            ),
            messages.SUCCESS,
        )

    def _service_error(self, request: HttpRequest, company: Company, error: ServiceError) -> None:
        retry_after = error.retry_after or (error.details or {}).get("retry_after")
        self.message_user(
            request,
            f"{company.name}: {texts.error_sentence(error.code, retry_after)} ({error.code})",
            messages.ERROR,
        )


@admin.register(PairingAttempt)
class PairingAttemptAdmin(admin.ModelAdmin):
    list_display = (
        "started_at",
        "company",
        "method",
        "phone",
        "started_by",
        "outcome",
        "error_code",
        "qr_rotations",
        "finished_at",
    )
    list_filter = ("method", "outcome")
    list_select_related = ("company",)
    search_fields = ("company__slug", "company__name", "phone", "started_by")
    date_hierarchy = "started_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "scope",
        "prefix_shown",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    list_select_related = ("company", "created_by")
    search_fields = ("name", "prefix", "company__slug")
    actions = ["revoke"]
    # key_hash is never shown, not even read-only.
    readonly_fields = ("prefix_shown", "created_at", "created_by", "last_used_at", "revoked_at")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "company")
        return (
            "name",
            "company",
            "prefix_shown",
            "created_at",
            "created_by",
            "last_used_at",
            "revoked_at",
        )

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "company") if obj else ()

    @admin.display(description=_("Scope"), ordering="company__slug")
    def scope(self, obj: ApiKey) -> str:
        return obj.company.slug if obj.company is not None else gettext("global")

    @admin.display(description=_("Key starts with"), ordering="prefix")
    def prefix_shown(self, obj: ApiKey) -> str:
        return f"wps_{obj.prefix}…" if obj.prefix else "—"

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, raw_key = ApiKey.issue(name=obj.name, company=obj.company, created_by=request.user)
        # The admin logs and redirects with `obj`: make it the row `issue` created.
        obj.__dict__.update(
            {field.attname: getattr(key, field.attname) for field in ApiKey._meta.concrete_fields}
        )
        obj._state.adding = False
        obj._state.db = key._state.db
        self.message_user(
            request,
            format_html(
                '{} <code class="raw-key">{}</code>',
                gettext("Copy the API key now: it is shown only once and stored only as a hash."),
                raw_key,
            ),
            messages.WARNING,
        )
        return None

    @admin.action(description=_("Revoke selected API keys"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]):
        now = timezone.now()
        for key in queryset.filter(revoked_at__isnull=True):
            key.revoked_at = now
            key.save(update_fields=["revoked_at"])
            self.log_change(request, key, "Revoked")
        self.message_user(request, gettext("Keys revoked."), messages.SUCCESS)


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("worker_id", "hostname", "pid", "started_at", "heartbeat_at", "stopped_at")
    search_fields = ("worker_id", "hostname")


@admin.register(PhoneCooldown)
class PhoneCooldownAdmin(admin.ModelAdmin):
    """WhatsApp's 429 cool-downs; staff may delete one to lift it early."""

    list_display = ("phone", "until", "reason")
    search_fields = ("phone",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "company", "action", "actor", "detail")
    list_filter = ("action",)
    list_select_related = ("company",)
    search_fields = ("company__slug", "company__name", "actor")
