"""QR rendering: the raw string is what WhatsApp sent; the image is for pages and integrators."""

from __future__ import annotations

import base64
import io
from functools import lru_cache

import qrcode
from qrcode.constants import ERROR_CORRECT_L


@lru_cache(maxsize=256)
def qr_png_data_url(data: str) -> str:
    if not data:
        return ""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_L, box_size=8, border=2)
    code.add_data(data)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def qr_terminal(data: str) -> str:
    """The QR as text for a terminal (`manage.py pair`)."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_L, border=1)
    code.add_data(data)
    code.make(fit=True)
    buffer = io.StringIO()
    code.print_ascii(out=buffer, invert=True)
    return buffer.getvalue()
