"""WebSocket routes (docs/design.md, "Events")."""

from channels.auth import AuthMiddlewareStack
from django.urls import path, re_path

from whatsapp.consumers import CompanyEventsConsumer, NoSuchSocket, PairLinkConsumer

websocket_urlpatterns: list = [
    # The staff console authenticates with the admin session; integrators with an API key.
    path("ws/v1/companies/<str:slug>/", AuthMiddlewareStack(CompanyEventsConsumer.as_asgi())),
    path("ws/v1/pair/<str:link_token>/", PairLinkConsumer.as_asgi()),
    # Anything else is refused cleanly (close 4404) instead of a routing error and a 500.
    re_path(r"", NoSuchSocket.as_asgi()),
]
