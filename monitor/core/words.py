"""An operator's words to customers: one text for every language, or one text per language."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from monitor.core.fields import LANGUAGES

MAX_TEXT = 5000  # characters in one language's text


@dataclass(frozen=True, slots=True)
class Words:
    """What an operator said: ``every`` (the same text for all) or ``own`` texts by language.

    A reader whose language has no text of its own reads the text of the fallback language
    (``notices.default_language``), else the first text given: an operator who wrote in one
    language is still quoted, in that language, rather than silently left out.
    """

    every: str = ""
    own: tuple[tuple[str, str], ...] = ()  # (language, text), in LANGUAGES order

    @classmethod
    def of(cls, texts: Mapping[str, str]) -> Words:
        """Words with one text per language (empty texts left out)."""
        return cls(own=tuple((lang, texts[lang]) for lang in LANGUAGES if texts.get(lang)))

    def __bool__(self) -> bool:
        return bool(self.every or self.own)

    def text(self, language: str, fallback: str = "") -> str:
        """The text a reader of ``language`` gets ("" when nothing was said)."""
        if self.every:
            return self.every
        own = dict(self.own)
        return own.get(language) or own.get(fallback) or next(iter(own.values()), "")

    def missing(self, languages: Iterable[str]) -> list[str]:
        """Which of ``languages`` have no text of their own (none when one text is for all)."""
        if self.every or not self.own:
            return []
        have = dict(self.own)
        return [lang for lang in dict.fromkeys(languages) if lang not in have]

    def to_json(self) -> str | dict[str, str]:
        """As the API shows it: a string for one text for all, else ``{language: text}``."""
        return dict(self.own) if self.own else self.every

    @classmethod
    def from_json(cls, value: Any, key: str = "message") -> Words:
        """Words from an API body: a string, or ``{"fr": …, "en": …}``; ValueError if wrong."""
        if isinstance(value, str):
            return cls(every=_checked(value, key))
        if isinstance(value, dict) and value:
            unknown = [str(k) for k in value if k not in LANGUAGES]
            if unknown:
                raise ValueError(f"{key}: unknown language {unknown[0]!r}; expected fr or en")
            return cls.of({lang: _checked(text, f"{key}.{lang}") for lang, text in value.items()})
        raise ValueError(f"{key}: expected a non-empty string or {{fr: …, en: …}}")

    def encode(self) -> str:
        """The stored form: JSON (a string, or an object by language)."""
        return json.dumps(self.to_json(), ensure_ascii=False) if self else ""

    @classmethod
    def decode(cls, raw: str) -> Words:
        """Words from ``encode``; a row written before per-language words is its plain text."""
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            return cls(every=raw)
        if isinstance(value, str):
            return cls(every=value)
        if isinstance(value, dict) and all(
            k in LANGUAGES and isinstance(v, str) for k, v in value.items()
        ):
            return cls.of(value)
        return cls(every=raw)


def _checked(text: Any, key: str) -> str:
    """``text`` stripped, if it is a non-empty string of at most MAX_TEXT characters."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{key}: expected a non-empty string")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{key}: at most {MAX_TEXT} characters, not {len(text)}")
    return text.strip()


NOTHING = Words()
"""No words: an automatic change, or an incident no operator spoke about."""
