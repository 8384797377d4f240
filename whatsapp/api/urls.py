"""REST API v1 routes (docs/design.md, "REST API"), the OpenAPI schema and its interactive docs."""

from django.urls import path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from whatsapp.api import views
from whatsapp.api.exceptions import api_not_found
from whatsapp.sandbox import views as sandbox_views


class SlugConverter:
    regex = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(SlugConverter, "company_slug")

company = "companies/<company_slug:slug>/"

urlpatterns = [
    path("companies/", views.CompanyListView.as_view(), name="api-companies"),
    path(company, views.CompanyDetailView.as_view(), name="api-company"),
    path(f"{company}session/", views.SessionView.as_view(), name="api-session"),
    path(f"{company}session/start/", views.SessionStartView.as_view(), name="api-session-start"),
    path(f"{company}session/qr/", views.SessionQrView.as_view(), name="api-session-qr"),
    path(
        f"{company}session/pairing-code/",
        views.PairingCodeView.as_view(),
        name="api-session-pairing-code",
    ),
    path(
        f"{company}session/reconnect/", views.ReconnectView.as_view(), name="api-session-reconnect"
    ),
    path(f"{company}session/logout/", views.LogoutView.as_view(), name="api-session-logout"),
    path(f"{company}session/health/", views.SessionHealthView.as_view(), name="api-session-health"),
    path(f"{company}credentials/", views.CredentialsView.as_view(), name="api-credentials"),
    path(f"{company}attempts/", views.AttemptListView.as_view(), name="api-attempts"),
    path(f"{company}pairing-links/", views.PairingLinkView.as_view(), name="api-pairing-links"),
    path("health/", views.ServiceHealthView.as_view(), name="api-health"),
    # Sandbox only (checked per request, so a settings change needs no URL reload).
    path(
        "sandbox/phone/link/",
        sandbox_views.SandboxPhoneLinkView.as_view(),
        name="api-sandbox-phone-link",
    ),
    path(
        "sandbox/phone/unlink/",
        sandbox_views.SandboxPhoneUnlinkView.as_view(),
        name="api-sandbox-phone-unlink",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Anything else under /api/v1/ is a JSON 404, never an HTML page.
    re_path(r"^.*$", api_not_found),
]
