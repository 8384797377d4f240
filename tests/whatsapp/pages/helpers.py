"""Helpers for page tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def path_of(link: Any) -> str:
    """The page's path, whatever PUBLIC_BASE_URL the link was built with."""
    return urlsplit(link.url).path
