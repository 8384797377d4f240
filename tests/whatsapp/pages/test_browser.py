"""Acceptance tests in a real Chromium against a live server in sandbox mode (docs/design.md, "Pages").

The server is `manage.py serve` in a subprocess, in the embedded mode (SQLite, in-memory layer,
in-process worker) with a fast sandbox clock, so the whole flow runs without a phone. Screenshots
go to a temporary folder, or to docs/screenshots/ with UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MOBILE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
CODE_RE = re.compile(r"^[1-9A-HJ-NP-TV-Z]{4}-[1-9A-HJ-NP-TV-Z]{4}$")
# Speed 15: the first QR lives 4 s, the next ones 1.3 s, the whole window about 11 s.
SANDBOX_SPEED = "15"
# Variables of the CI environment that would switch the server away from the embedded mode.
STRIPPED_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "CHANNEL_LAYER_PREFIX",
    "CACHE_KEY_PREFIX",
    "WHATSAPP_WORKER_MODE",
    "SENTRY_DSN",
    "PUBLIC_BASE_URL",
    "ALLOWED_HOSTS",
)

SEED = r"""
import json, time
from django.core import signing
from whatsapp.models import Company
from whatsapp.services import links
from whatsapp.services.actors import CLI
from whatsapp.services.state import session_get

out = {}
for slug, name in [("north", "North Flowers"), ("gamma", "Gamma Dental"), ("reset", "Reset Cafe"),
                   ("errors", "Error Bikes"), ("russian", "Салон Ромашка"), ("demo2", "Demo Two")]:
    company, _ = Company.objects.get_or_create(slug=slug, defaults={"name": name})
    session_get(company)
    out[slug] = links.pairing_link_create(company=company, actor=CLI).url
demo = Company.objects.get(slug="demo")
out["demo"] = links.pairing_link_create(company=demo, actor=CLI).url
body = signing.b64_encode(f"{demo.pk}:old:{int(time.time()) - 120}".encode()).decode()
out["expired"] = "/pair/" + links._signer(demo).sign(body) + "/"
withdrawn = Company.objects.create(slug="gone", name="Gone Shop")
out["revoked"] = links.pairing_link_create(company=withdrawn, actor=CLI, expires_in=60).url
withdrawn.rotate_link_secret()
print("SEED=" + json.dumps(out))
"""


@dataclass
class Live:
    url: str
    links: dict[str, str]
    screenshots: Path

    def link(self, name: str) -> str:
        path = re.sub(r"^https?://[^/]+", "", self.links[name])
        return self.url + path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, timeout: float, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    data = tmp_path_factory.mktemp("live-server")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED_ENV}
    env.update(
        DATA_DIR=str(data),
        WHATSAPP_BACKEND="sandbox",
        WHATSAPP_SANDBOX_SPEED=SANDBOX_SPEED,
        DEBUG="1",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="pairing_site.settings",
    )

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    manage("compilemessages", "--locale", "ru", "--ignore", ".venv")
    manage("migrate", "--noinput", "-v", "0")
    manage("bootstrap_demo")
    seeded = re.search(r"^SEED=(.*)$", manage("shell", "-c", SEED), re.M)
    assert seeded is not None, "the seed script printed no SEED= line"
    log = data / "server.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/", 60, server, log)
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            shots = ROOT / "docs" / "screenshots"
        else:
            shots = tmp_path_factory.mktemp("screenshots")
        shots.mkdir(parents=True, exist_ok=True)
        yield Live(
            url=f"http://127.0.0.1:{port}", links=json.loads(seeded.group(1)), screenshots=shots
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if os.environ.get("KEEP_SERVER_LOG"):
            shutil.copy(log, ROOT / "test-results-server.log")


@pytest.fixture(scope="module")
def browser(live):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser):
    contexts = []

    def make(viewport=MOBILE, locale="en-US", **options):
        context = browser.new_context(
            viewport=viewport, locale=locale, device_scale_factor=1, **options
        )
        context.set_default_timeout(15000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def shot(live: Live, page, name: str, full_page: bool = True) -> None:
    page.screenshot(path=str(live.screenshots / f"{name}.png"), full_page=full_page)


def get_code(page, phone: str) -> str:
    page.fill("#phone", phone)
    page.click("#get-code")
    page.wait_for_function(
        "() => /^[1-9A-Z]{4}-[1-9A-Z]{4}$/.test(document.getElementById('code-value').textContent)"
    )
    code = page.inner_text("#code-value")
    assert CODE_RE.match(code)
    return code


def link_with_simulated_phone(page, phone: str) -> None:
    get_code(page, phone)
    page.click("#simulate-code")
    expect_status(page, "Connected")


def expect_status(page, label: str, timeout: float = 15000) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#status-badge")).to_have_text(label, timeout=timeout)


def login(page, live: Live, next_path: str) -> None:
    page.goto(f"{live.url}/admin/login/?next={next_path}")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin")
    page.click("input[type=submit]")
    page.wait_for_url(f"**{next_path}")


# --- end user -----------------------------------------------------------------------------


def test_a_code_entered_on_the_phone_shows_connected_without_a_reload(live, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(live.link("demo"))
    expect(page.locator("#status-badge")).to_have_text("Not linked")
    page.evaluate("window.__samePage = true")

    get_code(page, "+7 900 123-45-67")
    expect(page.locator("#code-timer")).to_contain_text("The code expires in")
    expect(page.locator("#announcer")).to_contain_text("Code for +79001234567")
    shot(live, page, "pair-code-mobile")

    page.click("#simulate-code")

    expect_status(page, "Connected")
    expect(page.locator("#connected-box")).to_be_visible()
    expect(page.locator("#connected-phone")).to_have_text("Connected as +79001234567")
    expect(page.locator("#link-panel")).to_be_hidden()
    assert page.evaluate("window.__samePage") is True
    shot(live, page, "pair-connected-mobile")


def test_the_pairing_page_with_a_code_on_a_desktop(live, new_page):
    page = new_page(viewport=DESKTOP)
    page.goto(live.link("demo2"))
    get_code(page, "+1 415 555 2671")
    shot(live, page, "pair-code-desktop", full_page=False)


def test_the_qr_changes_when_it_rotates(live, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(live.link("north"))
    page.keyboard.press("Tab")  # keyboard: the tabs are reachable and switch with the arrows
    page.focus("#tab-code")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-qr")).to_have_attribute("aria-selected", "true")

    image = page.locator("#qr-image")
    expect(image).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    first = image.get_attribute("src")
    expect(page.locator("#qr-timer")).to_contain_text("A new QR code in")
    shot(live, page, "pair-qr-mobile")

    expect(image).not_to_have_attribute("src", first, timeout=10000)
    assert image.get_attribute("src").startswith("data:image/png;base64,")

    desktop = new_page(viewport=DESKTOP)
    desktop.goto(live.link("north"))
    desktop.click("#tab-qr")
    expect(desktop.locator("#qr-image")).to_be_visible()
    shot(live, desktop, "pair-qr-desktop", full_page=False)


def test_an_error_is_a_plain_sentence_with_the_next_step(live, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(live.link("errors"))
    page.fill("#phone", "+7 900 123-04-29")  # the sandbox's "WhatsApp answers 429" number
    page.click("#get-code")

    box = page.locator("#error-box")
    expect(box).to_be_visible()
    expect(page.locator("#error-sentence")).to_have_text(
        "Too many attempts for this number right now."
    )
    expect(page.locator("#error-next")).to_have_text(
        re.compile(r"Wait 2 h and try again, or link with the QR code")
    )
    expect(box.locator('[data-offer="qr"]')).to_be_visible()
    shot(live, page, "pair-error-mobile")

    box.locator('[data-offer="qr"]').click()
    expect(page.locator("#tab-qr")).to_have_attribute("aria-selected", "true")


@pytest.mark.parametrize(
    "name, status, title",
    [
        ("expired", 410, "This pairing link has expired"),
        ("revoked", 410, "This pairing link was withdrawn"),
    ],
)
def test_an_expired_or_revoked_link_shows_a_friendly_page(live, new_page, name, status, title):
    from playwright.sync_api import expect

    page = new_page()
    response = page.goto(live.link(name))

    assert response.status == status
    expect(page.locator("h1")).to_have_text(title)
    expect(page.locator(".sandbox-banner")).to_be_visible()
    if name == "expired":
        shot(live, page, "link-expired-mobile")


def test_accept_language_ru_gives_the_russian_page(live, new_page):
    from playwright.sync_api import expect

    page = new_page(locale="ru-RU")
    page.goto(live.link("russian"))

    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator("#get-code")).to_have_text("Получить код")
    expect(page.locator("#status-badge")).to_have_text("Не привязан")
    expect(page.locator("#status-box")).to_contain_text("WhatsApp ещё не привязан")
    page.fill("#phone", "+7 900 000 00 00")
    expect(page.locator("#phone-country")).to_have_text("Страна: Россия")
    shot(live, page, "pair-ru-mobile")

    page.select_option("#lang-select", "en")
    expect(page.locator("#get-code")).to_have_text("Get code")


# --- staff --------------------------------------------------------------------------------


def test_staff_reset_in_the_admin_turns_an_open_pairing_page_disconnected(live, new_page):
    from playwright.sync_api import expect

    user_page = new_page()
    user_page.goto(live.link("reset"))
    link_with_simulated_phone(user_page, "+7 900 123-45-68")

    admin = new_page()
    login(admin, live, "/admin/whatsapp/company/")
    admin.goto(f"{live.url}/admin/whatsapp/company/?q=reset")
    admin.check("input[name=_selected_action]")
    admin.select_option("select[name=action]", "reset_credentials")
    admin.click("button[name=index]")
    expect(admin.locator("h1")).to_have_text("Reset WhatsApp credentials?")
    expect(admin.locator(".reset-table")).to_contain_text("+79001234568")
    expect(admin.locator(".reset-table")).to_contain_text("yes, will be deleted")
    shot(live, admin, "admin-reset-confirmation-mobile")

    admin.click("input[value='Yes, reset the credentials']")
    expect(admin.locator(".messagelist")).to_contain_text("WhatsApp credentials removed for 1")

    expect_status(user_page, "Not linked")
    expect(user_page.locator("#error-sentence")).to_have_text(
        "Your administrator removed the WhatsApp link."
    )
    expect(user_page.locator("#link-panel")).to_be_visible()
    shot(live, user_page, "pair-after-reset-mobile")

    desktop_admin = new_page(viewport=DESKTOP)
    login(desktop_admin, live, "/admin/whatsapp/company/")
    shot(live, desktop_admin, "admin-companies-desktop", full_page=False)


def test_the_console_updates_live_when_another_company_links(live, new_page):
    from playwright.sync_api import expect

    console = new_page(viewport=DESKTOP)
    login(console, live, "/console/")
    row = console.locator('tr[data-slug="gamma"]')
    expect(row.locator(".badge")).to_have_text("Not linked")
    console.evaluate("window.__samePage = true")

    user_page = new_page()
    user_page.goto(live.link("gamma"))
    link_with_simulated_phone(user_page, "+7 900 123-45-69")

    expect(row.locator(".badge")).to_have_text("Connected", timeout=10000)
    expect(row).to_contain_text("+79001234569")
    assert console.evaluate("window.__samePage") is True
    shot(live, console, "console-desktop", full_page=False)

    mobile = new_page()
    login(mobile, live, "/console/")
    shot(live, mobile, "console-mobile")

    detail = new_page(viewport=DESKTOP)
    login(detail, live, "/console/gamma/")
    expect(detail.locator("#status-badge")).to_have_text("Connected")
    detail.click("text=Create pairing link")
    expect(detail.locator("#new-link-url")).to_have_value(re.compile(r"/pair/"))
    shot(live, detail, "console-company-desktop")

    detail_mobile = new_page()
    login(detail_mobile, live, "/console/north/")
    shot(live, detail_mobile, "console-company-mobile")


def test_the_console_company_page_follows_the_session_live(live, new_page):
    from playwright.sync_api import expect

    console = new_page(viewport=DESKTOP)
    login(console, live, "/console/demo2/")
    expect(console.locator("body")).to_have_attribute("data-socket", "open", timeout=5000)
