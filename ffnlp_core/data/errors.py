"""DataError: a problem with the user's data, raised by every step from reading a CSV to splitting it.

Its own module so that reading, guessing the columns and encoding the labels can all raise it without
importing one another just for it. Messages quote user values (column names, cells, file names) through
`shown`, which keeps them on one line and short, and marks them so that `DataError.markdown` can escape
them for a Markdown element while the message's own `code` spans stay. `str(error)` is plain text (the CLI
prints it); a page shows `markdown_safe(error)`.
"""

from __future__ import annotations

import re
import unicodedata

# Private-use characters around a user value inside a message; never left in str(error).
_OPEN, _CLOSE = "\ue000", "\ue001"
_VALUE = re.compile(f"{_OPEN}(.*?){_CLOSE}", re.DOTALL)
_LINE_BREAK = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")
# Every ASCII punctuation character may be backslash-escaped in CommonMark: escaping them all covers links,
# emphasis, code, HTML, headings and lists, Streamlit's LaTeX ($) and its :shortcodes:, and bare URLs.
_MARKDOWN = re.compile(r"([!-/:-@\[-`{-~])")
_ESCAPES = {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\x00": "\\0"}
SHOWN_CHARS = 60  # a user value longer than this is cut, with "..."


def _visible(char: str) -> str:
    """A control or invisible formatting character as a visible escape; any other character as is."""
    if char in _ESCAPES:
        return _ESCAPES[char]
    if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs"):
        return f"\\u{ord(char):04x}"
    return char


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A user value for a message: one line (line breaks and control characters as \\r, \\n, \\uXXXX),
    at most `limit` characters, marked so that DataError.markdown escapes it."""
    text = str(value)
    if len(text) > 4 * limit:  # no need to look at the whole of a huge cell
        text = text[: 4 * limit]
    text = "".join(_visible(char) for char in text)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{_OPEN}{text}{_CLOSE}"


def _escape(text: str) -> str:
    return _MARKDOWN.sub(r"\\\1", text)


def _one_line(text: str) -> str:
    """Any line break left in a message (from a value not passed through `shown`) becomes a space."""
    return _LINE_BREAK.sub(" ", text)


class DataError(ValueError):
    """A problem with the user's data, phrased so a student can act on it (what, where, what to do)."""

    def __init__(self, message: str):
        message = _one_line(str(message))
        self.marked = message
        super().__init__(message.replace(_OPEN, "").replace(_CLOSE, ""))

    def __reduce__(self):  # pickled with its marks, so that `markdown` survives a process boundary
        return type(self), (self.marked,)

    @property
    def markdown(self) -> str:
        """The message for a Markdown element: user values escaped, the message's own `code` spans kept."""
        parts = _VALUE.split(self.marked)  # [message, value, message, value, ...]
        return "".join(_escape(part) if i % 2 else part for i, part in enumerate(parts))


def markdown_safe(message: object) -> str:
    """Text a page can hand to st.error / st.markdown: a DataError's own Markdown with its user values
    escaped; any other message (an exception or a string) escaped whole, so it shows as typed."""
    if isinstance(message, DataError):
        return message.markdown
    text = _one_line(str(message)).replace(_OPEN, "").replace(_CLOSE, "")
    return _escape(text)
