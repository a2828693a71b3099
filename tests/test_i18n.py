"""The zh/en catalogue: complete, consistent, and negotiated as a user expects."""
from pathlib import Path

import pytest

from supervisor import i18n


def test_shipped_catalogue_is_complete_and_consistent():
    catalogue = i18n.load_catalog()
    assert catalogue, "no messages shipped"
    for key, value in catalogue.items():
        assert set(value) == {"zh", "en"}, key


def test_plural_in_english_only():
    assert i18n.text("calls.count", "en", n=1) == "1 call"
    assert i18n.text("calls.count", "en", n=3) == "3 calls"
    assert i18n.text("calls.count", "zh", n=1) == "1 个来电"


def test_unknown_key_is_an_error():
    with pytest.raises(KeyError):
        i18n.text("no.such.key", "zh")


@pytest.mark.parametrize("header, chosen, expected", [
    (None, None, "zh"),
    ("en-US,en;q=0.9", None, "en"),
    ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh"),
    ("fr-FR,en;q=0.5,zh;q=0.4", None, "en"),
    ("en;q=0.2,zh;q=0.8", None, "zh"),
    ("en-US", "zh", "zh"),
    ("zh-CN", "en", "en"),
    ("en", "klingon", "en"),
    ("de", None, "zh"),
])
def test_negotiation(header, chosen, expected):
    assert i18n.negotiate(header, chosen) == expected


@pytest.mark.parametrize("body, complaint", [
    ("a: {zh: x}\n", "needs exactly"),
    ("a: {zh: '{n}', en: 'x'}\n", "different placeholders"),
    ("a: {zh: x, en: {one: y}}\n", "'one' and 'other'"),
])
def test_broken_catalogue_is_refused(tmp_path: Path, body, complaint):
    (tmp_path / "x.yaml").write_text(body, encoding="utf-8")
    with pytest.raises(i18n.CatalogError, match=complaint):
        i18n.load_catalog(tmp_path)


def test_duplicate_key_across_files_is_refused(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("k: {zh: x, en: y}\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("k: {zh: x, en: y}\n", encoding="utf-8")
    with pytest.raises(i18n.CatalogError, match="already defined in a.yaml"):
        i18n.load_catalog(tmp_path)


class _Request:
    """What i18n.request_language reads of a Starlette Request."""

    def __init__(self, query=None, cookie=None, header=None):
        self.query_params = {"lang": query} if query else {}
        self.cookies = {i18n.LANG_COOKIE: cookie} if cookie else {}
        self.headers = {"accept-language": header} if header else {}


@pytest.mark.parametrize("query, cookie, header, expected", [
    (None, None, None, "zh"),
    (None, None, "en-US,en;q=0.9", "en"),
    (None, "zh", "en-US", "zh"),          # the user's choice beats the browser
    ("en", "zh", None, "en"),             # a link or the page's script asking in the page's language
    ("klingon", "en", "zh-CN", "en"),     # an unsupported ?lang= is passed over, the choice stays
    (None, "klingon", "en", "en"),
])
def test_request_language(query, cookie, header, expected):
    assert i18n.request_language(_Request(query, cookie, header)) == expected
