"""Scrub key material out of text before it leaves the process, then cut it short.

Who calls it: the router, on every failed attempt's message (provider error bodies,
in-band stream errors, transport failures) before that message reaches an error body, an
access line or a log; the HTTP layer, on anything it logs about an unexpected error. The
keys come from `credentials.Credentials.redactor()`: every Secret value the gateway holds and
every env key it has sent upstream (a key never sent cannot be echoed).

Why pieces and not only whole keys: an upstream may echo a key partly (a proxy that
truncates, a provider that prints the first characters), and a message cut at a fixed
length can end in the middle of an echoed key. So every run of text that matches any
`PIECE`-character piece of a key is replaced, the whole text is scrubbed before it is cut,
and the result is checked again (a marker next to key-like text could, in theory, form a
new piece, or a key could be made of the marker's characters; then the whole message is
withheld). Keys shorter than `PIECE` are replaced
where they occur whole; keys shorter than `MIN_KEY` are ignored (too short to tell from
ordinary words).

Must not: log, keep the text, or return anything that still holds a `PIECE`-character
piece of a known key.
"""

from __future__ import annotations

from collections.abc import Iterable

from switchyard_gateway.errors import DETAIL_LIMIT

#: Length of the key pieces looked for: a shorter piece is too common to mean a key and
#: too short to be worth anything to an attacker.
PIECE = 8
#: Keys shorter than this are not redacted at all (a 3-character "key" would eat words).
MIN_KEY = 4
MARKER = "[REDACTED]"
#: Said instead of a message that still held a key piece after scrubbing (never expected).
WITHHELD = "[message withheld: it held key material]"
_PASSES = 3


class Redactor:
    """The pieces of a fixed set of keys, and the scrubbing that removes them from text."""

    __slots__ = ("_pieces", "_short")

    def __init__(self, keys: Iterable[str]) -> None:
        pieces: set[str] = set()
        short: set[str] = set()
        for key in keys:
            if len(key) >= PIECE:
                pieces.update(key[i:i + PIECE] for i in range(len(key) - PIECE + 1))
            elif len(key) >= MIN_KEY:
                short.add(key)
        self._pieces = frozenset(pieces)
        # Longest first, so a short key inside another is not replaced before it.
        self._short = tuple(sorted(short, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self._pieces or self._short)

    def scrub(self, text: str, limit: int | None = DETAIL_LIMIT) -> str:
        """`text` with every key piece replaced by `[REDACTED]`, then cut to `limit`
        characters (with "..." when cut). Scrubbing happens on the whole text first, so
        a cut can never leave a key piece behind."""
        if limit is not None and len(text) > _window(limit):
            # Bounds the work on a huge upstream body. Safe: what is scrubbed is still a
            # prefix of the text, and at the window's end a cut key leaves either a piece
            # long enough to be found or one shorter than PIECE.
            text = text[:_window(limit)]
        if self:
            for _ in range(_PASSES):
                if not self.holds_key(text):
                    break
                text = self._replace(text)
            else:
                if self.holds_key(text):  # the marker itself makes up a key piece
                    text = "" if self.holds_key(WITHHELD) else WITHHELD
        if limit is not None and len(text) > limit:
            text = text[:limit]
            # The ellipsis could complete a piece of a key that holds dots: then none.
            if not (self and self.holds_key(text + "...")):
                text += "..."
        return text

    def holds_key(self, text: str) -> bool:
        """True when `text` holds a key piece (a short key: the whole key)."""
        if any(key in text for key in self._short):
            return True
        pieces = self._pieces
        return bool(pieces) and any(text[i:i + PIECE] in pieces
                                    for i in range(len(text) - PIECE + 1))

    def _replace(self, text: str) -> str:
        for key in self._short:
            if key in text:
                text = text.replace(key, MARKER)
        pieces = self._pieces
        if not pieces or len(text) < PIECE:
            return text
        out: list[str] = []
        kept = 0  # text[kept:] is not written out yet
        covered = -1  # end of the run being redacted (exclusive), -1 when none
        for i in range(len(text) - PIECE + 1):
            if text[i:i + PIECE] in pieces:
                if covered < i:  # a new run starts here
                    out.append(text[kept:i])
                    out.append(MARKER)
                covered = i + PIECE
                kept = covered
        if not out:
            return text
        out.append(text[kept:])
        return "".join(out)


def _window(limit: int) -> int:
    return 4 * limit + 1024


#: No keys known: scrubbing only cuts.
EMPTY = Redactor(())


def no_keys() -> Redactor:
    """The redactor source of an app without credentials (tests, tools)."""
    return EMPTY
