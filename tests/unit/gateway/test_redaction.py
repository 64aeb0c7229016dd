"""Key scrubbing: no PIECE-character piece of a known key survives, wherever it sits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from switchyard_gateway import errors, redaction

KEY = "sk-proj-Abcdefghijklmnopqrstuvwxyz012345"


def _pieces(key: str) -> list[str]:
    return [key[i:i + redaction.PIECE] for i in range(len(key) - redaction.PIECE + 1)]


def _leaks(text: str, key: str) -> list[str]:
    return [p for p in _pieces(key) if p in text]


@settings(max_examples=400, deadline=None)
@given(before=st.text(max_size=600), after=st.text(max_size=200),
       key=st.text(min_size=redaction.PIECE, max_size=64),
       limit=st.integers(min_value=0, max_value=700))
def test_no_key_piece_survives_any_message_any_place_any_cut(
        before: str, after: str, key: str, limit: int) -> None:
    scrubbed = redaction.Redactor([key]).scrub(before + key + after, limit)
    assert not _leaks(scrubbed, key)
    assert len(scrubbed) <= limit + len("...")


#: Characters of the marker, the ellipsis and a few others: keys and messages drawn from
#: them probe a marker or an ellipsis completing a key piece next to the text around it.
TIGHT = st.text(alphabet="ab.[]REDACT", max_size=80)


@settings(max_examples=500, deadline=None)
@given(before=TIGHT, after=TIGHT, key=st.text(alphabet="ab.[]REDACT", min_size=8, max_size=24),
       limit=st.integers(min_value=0, max_value=120))
def test_no_key_piece_survives_keys_made_of_marker_characters(
        before: str, after: str, key: str, limit: int) -> None:
    scrubbed = redaction.Redactor([key]).scrub(before + key + after, limit)
    assert not _leaks(scrubbed, key)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400), start=st.integers(0, 40), stop=st.integers(8, 48),
       limit=st.integers(min_value=0, max_value=500))
def test_a_partial_echo_of_a_key_is_scrubbed_too(text: str, start: int, stop: int,
                                                 limit: int) -> None:
    # A provider that echoes part of the key (truncated by a proxy, say).
    piece = KEY[start:start + stop]
    scrubbed = redaction.Redactor(["other-key-123456", KEY]).scrub(text + piece + text, limit)
    assert not _leaks(scrubbed, KEY)


def test_key_echoed_just_past_the_cut_leaks_nothing() -> None:
    # The case: the old code cut at 300 and then looked for the whole key, so the
    # 31 characters before the cut went out.
    message = "x" * (errors.DETAIL_LIMIT - 31) + KEY + " was sent"
    scrubbed = redaction.Redactor([KEY]).scrub(message)
    assert not _leaks(scrubbed, KEY)
    assert scrubbed.startswith("x" * (errors.DETAIL_LIMIT - 31) + "[REDAC")


def test_every_occurrence_of_every_key_is_replaced_and_the_rest_kept() -> None:
    other = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
    scrubbed = redaction.Redactor([KEY, other, "short7!"]).scrub(
        f"a {KEY} b {other} c {KEY[:20]} d short7! e", limit=None)
    assert scrubbed == "a [REDACTED] b [REDACTED] c [REDACTED] d [REDACTED] e"


def test_the_ellipsis_of_the_cut_cannot_complete_a_key_piece() -> None:
    key = "hello...world"
    scrubbed = redaction.Redactor([key]).scrub("Q" * 10 + "hello" + "ZZZZ", limit=15)
    assert scrubbed == "Q" * 10 + "hello"


def test_keys_too_short_to_tell_from_words_are_left_alone() -> None:
    assert redaction.Redactor(["abc"]).scrub("abc abc", None) == "abc abc"
    assert not redaction.Redactor(["abc"])


def test_a_huge_message_is_scrubbed_within_a_bounded_window() -> None:
    message = "y" * 5_000_000 + KEY
    assert redaction.Redactor([KEY]).scrub(message) == "y" * errors.DETAIL_LIMIT + "..."


def test_credentials_redact_secrets_and_the_env_keys_they_sent() -> None:
    from switchyard_gateway.credentials import Credentials
    from switchyard_schema import ApiKeyRef

    creds = Credentials({"OPENAI": KEY, "HOME": "/root/unrelated-value"})
    assert not creds.redactor().holds_key(KEY)  # never sent: nothing to echo yet
    creds.resolve("default", ApiKeyRef.model_validate({"envVar": "OPENAI"}))
    assert creds.redactor().holds_key("echo " + KEY[5:20])
    assert not creds.redactor().holds_key("/root/unrelated-value")


def test_credentials_redactor_follows_a_secret_rotation() -> None:
    from switchyard_gateway.api_key import ApiKey
    from switchyard_gateway.credentials import Credentials

    creds = Credentials({})
    creds.replace_secrets({("ns", "s", "k"): ApiKey(KEY)})
    assert creds.redactor().holds_key(KEY)
    rotated = "sk-rotated-0000111122223333"
    creds.replace_secrets({("ns", "s", "k"): ApiKey(rotated)})
    assert creds.redactor().holds_key(rotated)
    assert creds.redactor().holds_key(KEY)  # an attempt sent just before may echo it
    creds.replace_secrets({("ns", "s", "k"): ApiKey(rotated)})
    assert not creds.redactor().holds_key(KEY)
