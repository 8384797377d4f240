"""docs/design.md and docs/whatsapp.md stay true to the code.

Code comments cite these documents by their `##` section titles, and the design document must name
every error code, status, outcome and reason the code can produce. The lists are read from the
code itself (the errors module, the model choices, the page texts, and a scan of the sources for
literal reason codes), so adding a code without documenting it fails here. No database needed.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db.models import TextChoices

from whatsapp import errors, models
from whatsapp.backends.neonize import failures
from whatsapp.pages import texts

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "design.md"
WHATSAPP = ROOT / "docs" / "whatsapp.md"

DESIGN_HEADINGS = [
    "What it is",
    "Domain",
    "Statuses and reasons",
    "Linking rules",
    "Errors",
    "REST API",
    "Events",
    "Pages",
    "Backends",
    "Topology and ownership",
    "Security",
    "Known gaps",
]
LINKING_SUBSECTIONS = [
    "Phone numbers",
    "QR codes",
    "Pairing codes",
    "Stored credentials",
    "Abandoned attempts",
    "Concurrency",
    "Rate limits",
    "After linking",
]
WHATSAPP_HEADINGS = [
    "Calls that kill the process",
    "Several companies in one store",
    "Database connections",
    "QR flow",
    "Pairing-code flow",
    "Events and their mapping",
    "Threads",
    "Linking connects never return",
    "Device name",
    "Passkeys",
    "The emulator",
    "Why the backend is shaped as it is",
]

# Reason codes that no module exposes as a constant: `disconnected` event reasons and codes only
# the pages use. Each must still occur in the code (see test below), so this list cannot go stale.
LITERAL_REASONS = ("CANCELLED", "CONNECTION_LOST", "CREDENTIALS_RESET", "LINK_INVALID")

# Literal reason codes in the sources: first argument of the calls that set or publish a reason,
# and `error_code=` / `last_error_code=` keywords.
_REASON_PATTERNS = (
    re.compile(
        r"\b(?:disconnected_event|_fail_window|_retry_later|_go_failed|showError)"
        r'\(\s*"([A-Z][A-Z_]+)"'
    ),
    re.compile(r'\b(?:last_)?error_code\s*=\s*"([A-Z][A-Z_]+)"'),
)

# The documents restate outside material in our own words; they must not point outside the repo.
_OUTSIDE_NAMES = ("SPEC" + ".md", "WHATSAPP_NOTES" + ".md", "shared/", "seeds")

SKIPPED_DIRS = {
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".tox",
    "htmlcov",
}
SKIPPED_TOP_DIRS = {"data"}


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _headings(text: str, level: int) -> list[str]:
    marker = "#" * level + " "
    return [line[len(marker) :].strip() for line in text.splitlines() if line.startswith(marker)]


def _section(text: str, title: str) -> str:
    """The body of the `## title` section, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no '## {title}' section"
    return match.group(1)


def _source_files() -> Iterator[Path]:
    for folder in (ROOT / "whatsapp", ROOT / "static"):
        for path in folder.rglob("*"):
            if path.suffix in {".py", ".js"} and "migrations" not in path.parts:
                yield path


def _sources() -> str:
    return "\n".join(_read(path) for path in _source_files())


def _error_classes() -> list[type[errors.ServiceError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.ServiceError) and cls.__module__ == errors.__name__
    ]


def _repo_text_files() -> Iterator[Path]:
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder)
        dirs[:] = [
            name
            for name in dirs
            if name not in SKIPPED_DIRS
            and not name.endswith("_cache")
            and not (here == ROOT and name in SKIPPED_TOP_DIRS)
        ]
        for name in files:
            yield here / name


def _text_or_none(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None  # edited or removed while we walk
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# --- structure ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "required"), [(DESIGN, DESIGN_HEADINGS), (WHATSAPP, WHATSAPP_HEADINGS)]
)
def test_each_document_has_its_sections_in_order(path: Path, required: list[str]) -> None:
    found = _headings(_read(path), 2)
    assert found == required


def test_linking_rules_has_its_subsections_in_order() -> None:
    body = _section(_read(DESIGN), "Linking rules")
    assert _headings(body, 3) == LINKING_SUBSECTIONS


# --- design.md against the code ----------------------------------------------------------------


def test_every_error_code_is_in_the_errors_table_with_its_http_status() -> None:
    rows = [line for line in _section(_read(DESIGN), "Errors").splitlines() if line.startswith("|")]
    classes = _error_classes()
    assert {cls.code for cls in classes} >= set(errors.ERRORS_BY_CODE)
    for cls in classes:
        mine = [row for row in rows if f"`{cls.code}`" in row]
        assert mine, f"{cls.code} has no row in the Errors table"
        status = re.compile(rf"\|\s*{cls.http_status}\s*\|")
        assert any(status.search(row) for row in mine), f"{cls.code}: HTTP {cls.http_status}"


@pytest.mark.parametrize(
    "choices", [models.SessionStatus, models.AttemptOutcome, models.AttemptMethod]
)
def test_every_status_outcome_and_method_is_named(choices: type[TextChoices]) -> None:
    design = _read(DESIGN)
    missing = [value for value in choices.values if f"`{value}`" not in design]
    assert not missing


def test_every_status_reason_is_named_in_statuses_and_in_errors() -> None:
    design = _read(DESIGN)
    reasons = _section(design, "Statuses and reasons")
    listed = _section(design, "Errors")
    for code in errors.STATUS_REASONS:
        assert f"`{code}`" in reasons, code
        assert f"`{code}`" in listed, code


def test_every_code_the_pages_explain_is_named() -> None:
    design = _read(DESIGN)
    missing = [code for code in texts.ERROR_TEXTS if f"`{code}`" not in design]
    assert not missing


def test_every_reason_code_literal_in_the_sources_is_named() -> None:
    sources = _sources()
    found = {code for pattern in _REASON_PATTERNS for code in pattern.findall(sources)}
    # The scan must keep working: these are set as literals today.
    assert {"CANCELLED", "CONNECTION_LOST", "CONNECTION_CLOSED"} <= found
    design = _read(DESIGN)
    missing = sorted(code for code in found if f"`{code}`" not in design)
    assert not missing


@pytest.mark.parametrize("code", LITERAL_REASONS)
def test_literal_reasons_still_occur_in_the_code_and_are_named(code: str) -> None:
    assert f'"{code}"' in _sources(), f"{code} is no longer used: drop it from LITERAL_REASONS"
    assert f"`{code}`" in _read(DESIGN)


# --- whatsapp.md against the code --------------------------------------------------------------


def test_every_connect_failure_reason_is_in_the_events_mapping() -> None:
    # Read from the source: importing the mapping module would load neonize's Go runtime.
    source = _read(ROOT / "whatsapp" / "backends" / "neonize" / "mapping.py")
    table = re.search(r"_CONNECT_FAILURE_CODES[^{]*\{(.*?)\}", source, re.S)
    assert table
    reasons = re.findall(r":\s*(\d{3}),", table.group(1))
    assert reasons
    section = _section(_read(WHATSAPP), "Events and their mapping")
    missing = [reason for reason in reasons if not re.search(rf"\b{reason}\b", section)]
    assert not missing


def test_every_pair_phone_error_rule_is_in_the_pairing_code_flow() -> None:
    section = _section(_read(WHATSAPP), "Pairing-code flow")
    for markers, error_class, _ in failures._PAIR_PHONE_RULES:
        assert f"`{markers[0]}`" in section, markers[0]
        assert f"`{error_class.code}`" in section, error_class.code


# --- nothing points outside the repository -----------------------------------------------------


@pytest.mark.parametrize("path", [DESIGN, WHATSAPP])
def test_the_documents_name_nothing_outside_the_repository(path: Path) -> None:
    text = _read(path)
    assert [name for name in _OUTSIDE_NAMES if name in text] == []


def test_no_file_in_the_repository_cites_the_old_outside_documents() -> None:
    names = _OUTSIDE_NAMES[:2]
    offenders = []
    for path in _repo_text_files():
        text = _text_or_none(path)
        if text is not None and any(name in text for name in names):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
