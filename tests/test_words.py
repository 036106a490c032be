"""Operator words: one text for every language or one per language, with a stated fallback."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.core.words import NOTHING, Words

BOTH = Words.of({"fr": "Base en panne.", "en": "Database down."})
FRENCH = Words.of({"fr": "Base en panne."})
ENGLISH = Words.of({"en": "Database down."})
ALL = Words(every="Same for all.")


@pytest.mark.parametrize(
    ("words", "language", "fallback", "expected"),
    [
        (BOTH, "en", "fr", "Database down."),
        (BOTH, "fr", "en", "Base en panne."),
        (FRENCH, "en", "fr", "Base en panne."),  # missing: the fallback language's text
        (ENGLISH, "fr", "fr", "Database down."),  # no fallback text either: the one given
        (ALL, "en", "fr", "Same for all."),
        (NOTHING, "fr", "fr", ""),
    ],
)
def test_each_reader_gets_their_text_else_the_fallback(
    words: Words, language: str, fallback: str, expected: str
) -> None:
    """A reader's own text first, then the default language's, then the first given."""
    assert words.text(language, fallback) == expected


@pytest.mark.parametrize("words", [BOTH, FRENCH, ALL, NOTHING])
def test_stored_words_come_back_unchanged(words: Words) -> None:
    """encode/decode is lossless, and a row written before per-language words is its text."""
    assert Words.decode(words.encode()) == words
    assert Words.decode("Plain text from an older version.") == Words(
        every="Plain text from an older version."
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Restore at 80 %.  ", Words(every="Restore at 80 %.")),
        ({"fr": "Fr", "en": "En"}, Words(own=(("fr", "Fr"), ("en", "En")))),
        ({"en": "En"}, Words(own=(("en", "En"),))),
    ],
)
def test_the_api_takes_a_string_or_one_text_per_language(value: Any, expected: Words) -> None:
    """A string is one text for all (as before); a mapping is per language, in any order."""
    assert Words.from_json(value) == expected
    assert Words.from_json(expected.to_json()) == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("   ", "message: expected a non-empty string"),
        ({}, "message: expected a non-empty string or {fr: …, en: …}"),
        ({"de": "Hallo"}, "message: unknown language 'de'; expected fr or en"),
        ({"fr": ""}, "message.fr: expected a non-empty string"),
        ({"en": "x" * 5001}, "message.en: at most 5000 characters, not 5001"),
        (42, "message: expected a non-empty string or {fr: …, en: …}"),
    ],
)
def test_wrong_api_words_are_refused_with_the_key(value: Any, error: str) -> None:
    """Each refusal names the key (and language) at fault."""
    with pytest.raises(ValueError, match="^" + error.replace("{", r"\{").replace("}", r"\}")):
        Words.from_json(value)


def test_missing_languages_are_those_without_their_own_text() -> None:
    """One text for all misses nothing; per-language words miss the languages not given."""
    assert FRENCH.missing(["fr", "en", "en"]) == ["en"]
    assert ALL.missing(["fr", "en"]) == [] and BOTH.missing(["fr", "en"]) == []
