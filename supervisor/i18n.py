"""User-facing text in Chinese (the default) and English.

Every text a supervisor, an agent or an admin reads in the web view or the terminal view lives in
`supervisor/messages/*.yaml`, one file per area (view, switches, forecast, ...), as

    key: {zh: "…{n}…", en: "…{n}…"}

A value may instead be a plural map for English (`en: {one: "1 call", other: "{n} calls"}`): Chinese has no
plural, English picks by `n`. Keys are unique across files; every key has both languages with the same
placeholders (tests/test_i18n.py checks the whole catalogue). The browser gets the catalogue of its language
from the page, so JS and Python speak with one voice.
"""
from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
CATALOG_DIR = Path(__file__).resolve().parent / "messages"
LANG_COOKIE = "hotline_lang"  # the user's language choice, remembered by this browser (the page's buttons)


class CatalogError(ValueError):
    pass


def _placeholders(value: Any) -> set[str]:
    forms = value.values() if isinstance(value, Mapping) else [value]
    return {name for form in forms for _, name, _, _ in string.Formatter().parse(str(form)) if name}


def load_catalog(directory: Path = CATALOG_DIR) -> dict[str, dict[str, Any]]:
    """All messages, checked: unique keys, both languages, the same placeholders in each."""
    merged: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, Mapping):
            raise CatalogError(f"{path.name}: expected a mapping of message keys")
        for key, value in data.items():
            where = f"{path.name}: {key}"
            if key in merged:
                raise CatalogError(f"{where}: already defined in {origin[key]}")
            if not isinstance(value, Mapping) or set(value) != set(LANGUAGES):
                raise CatalogError(f"{where}: needs exactly {', '.join(LANGUAGES)}")
            en = value["en"]
            if isinstance(en, Mapping) and set(en) != {"one", "other"}:
                raise CatalogError(f"{where}: an English plural needs 'one' and 'other'")
            if _placeholders(value["zh"]) != _placeholders(en):
                raise CatalogError(f"{where}: zh and en use different placeholders")
            merged[key] = dict(value)
            origin[key] = path.name
    return merged


@lru_cache(maxsize=1)
def catalog() -> dict[str, dict[str, Any]]:
    return load_catalog()


def language(value: str | None) -> str:
    """A supported language for `value` ('zh-CN', 'en_US', 'en', ...), else the default."""
    if value:
        base = value.strip().replace("_", "-").split("-")[0].lower()
        if base in LANGUAGES:
            return base
    return DEFAULT_LANGUAGE


def negotiate(accept_language: str | None, chosen: str | None = None) -> str:
    """The user's own choice first, then the browser's Accept-Language by weight, then Chinese."""
    if chosen and language(chosen) == chosen.split("-")[0].lower():
        return language(chosen)
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        base = tag.strip().split("-")[0].lower()
        if base in LANGUAGES and weight > 0:
            ranked.append((-weight, index, base))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def request_language(request: Any) -> str:
    """The language of a web request (a Starlette Request): `?lang=` (a link, or a page's script asking in the
    page's language), then the user's remembered choice (LANG_COOKIE), then the browser's Accept-Language."""
    for chosen in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if chosen and chosen.strip().replace("_", "-").split("-")[0].lower() in LANGUAGES:
            return language(chosen)
    return negotiate(request.headers.get("accept-language"))


def text(key: str, lang: str, /, **params: Any) -> str:
    """The message `key` in `lang`, with its placeholders filled. An unknown key is a bug: KeyError."""
    value = catalog()[key][language(lang)]
    if isinstance(value, Mapping):
        value = value["one"] if params.get("n") == 1 else value["other"]
    return str(value).format(**params)


def messages_for(lang: str) -> dict[str, Any]:
    """The catalogue in one language, for the browser (plural maps kept as they are)."""
    lang = language(lang)
    return {key: value[lang] for key, value in catalog().items()}
