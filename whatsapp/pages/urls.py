"""Pages (docs/design.md, "Pages"): the end-user pairing page and the staff console."""

from django.urls import include, path

from whatsapp.pages import views

urlpatterns = [
    path("", views.home, name="home"),
    path("pair/<str:link_token>/", views.pair_page, name="pair-page"),
    path("console/", views.console_index, name="console"),
    path("console/<str:slug>/", views.console_company, name="console-company"),
    path("console/<str:slug>/start/", views.console_start, name="console-start"),
    path(
        "console/<str:slug>/pairing-code/", views.console_pairing_code, name="console-pairing-code"
    ),
    path("console/<str:slug>/reconnect/", views.console_reconnect, name="console-reconnect"),
    path(
        "console/<str:slug>/pairing-link/", views.console_pairing_link, name="console-pairing-link"
    ),
    path("console/<str:slug>/reset/", views.console_reset, name="console-reset"),
    # set_language (POST /i18n/setlang/): the language switch on every page.
    path("i18n/", include("django.conf.urls.i18n")),
]
