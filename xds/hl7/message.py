"""An HL7 v2 message as received: delimiters, charset, MSH header, segments and field access.

Segments are split as python-hl7 (``hl7.parse``) splits them, without building its containers
(python-hl7 resolves escape sequences); around that, what a receiver needs: decoding by MSH-18
(HL7 v2.5 2.15.9.18, table 0211), segment separators CR, LF or CRLF, validation of MSH-1/MSH-2
(HL7 v2.5 2.5.4), and total field access that never raises: a missing segment, field, repetition
or component reads as "".

Every parse failure is an :class:`HL7ParseError` carrying an HL7 table 0357 error code.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass

import hl7
import hl7.util

# python-hl7 logs the whole field (patient data) when it cannot resolve an escape sequence in it, at
# WARNING and at ERROR with a traceback; a malformed escape is the sender's, not worth a log line.
hl7.util.logger.setLevel(logging.CRITICAL)

# HL7 table 0357 (message error condition codes), the ones a receiver of ADT uses.
SEGMENT_SEQUENCE_ERROR = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
VALUE_TOO_LONG = "104"  # v2.7; used for a whole message over the listener's size limit
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT_CODE = "201"
UNSUPPORTED_PROCESSING_ID = "202"
UNSUPPORTED_VERSION_ID = "203"
UNKNOWN_KEY_IDENTIFIER = "204"
DUPLICATE_KEY_IDENTIFIER = "205"
APPLICATION_INTERNAL_ERROR = "207"

ERROR_TEXT = {
    "0": "Message accepted",
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    VALUE_TOO_LONG: "Value too long",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    UNSUPPORTED_VERSION_ID: "Unsupported version id",
    UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    APPLICATION_INTERNAL_ERROR: "Application internal error",
}

# HL7 table 0211 (alternate character sets) -> Python codecs.
_CHARSETS = {
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UNICODE": "utf-8",
    "UTF-8": "utf-8",
}

_SEGMENT_BREAK = re.compile(r"\r\n|\n|\r")


class HL7ParseError(ValueError):
    """The bytes are not a usable HL7 v2 message. ``code`` is from HL7 table 0357."""

    def __init__(self, reason: str, code: str = SEGMENT_SEQUENCE_ERROR, location: str = "MSH"):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.location = location


@dataclass(frozen=True)
class Delimiters:
    """MSH-1 and MSH-2 (HL7 v2.5 2.5.4); ``truncation`` only from v2.7 on."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    @property
    def _specials(self) -> str:
        return self.field + self.encoding_characters + "\r\n"

    @property
    def encoding_characters(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation

    def escaped(self, text: str) -> str:
        """``text`` with delimiters written as escape sequences (HL7 v2.5 2.7.4)."""
        if not _specials_pattern(self._specials).search(text):
            return text
        e = self.escape
        out = text.replace(e, f"{e}E{e}")
        for char, code in (
            (self.field, "F"),
            (self.component, "S"),
            (self.subcomponent, "T"),
            (self.repetition, "R"),
        ):
            out = out.replace(char, f"{e}{code}{e}")
        if self.truncation:
            out = out.replace(self.truncation, f"{e}P{e}")
        return out.replace("\r", f"{e}X0D{e}").replace("\n", f"{e}X0A{e}")


@functools.lru_cache(maxsize=16)
def _specials_pattern(specials: str) -> re.Pattern[str]:
    return re.compile("[" + re.escape(specials) + "]")


STANDARD_DELIMITERS = Delimiters()


def _part(parts: list[str], index: int) -> str:
    return parts[index] if index < len(parts) else ""


class Segment:
    """One segment. Positions are 1-based as in the standard: PID-3.4.2 is ``value(3, 1, 4, 2)``.

    The segment is kept as its list of fields; repetitions, components and subcomponents are split
    when read (a receiver reads a handful of them). MSH-1 and MSH-2 are fields of their own, so MSH-n
    sits at index n like PID-n, and are never split.
    """

    __slots__ = ("_fields", "_message", "_opaque", "_rep", "_comp", "_sub")

    def __init__(self, fields: list[str], message: Message, opaque: int = 1):
        d = message.delimiters
        self._fields = fields
        self._message = message
        self._opaque = opaque  # fields below this index are not split (MSH-1, MSH-2)
        self._rep, self._comp, self._sub = d.repetition, d.component, d.subcomponent

    @property
    def id(self) -> str:
        return self._fields[0]

    def _repetitions(self, n: int) -> list[str]:
        text = self._fields[n] if n < len(self._fields) else ""
        return [text] if 0 < n < self._opaque else text.split(self._rep)

    def repetition_count(self, n: int) -> int:
        text = self._fields[n] if n < len(self._fields) else ""
        if not text:
            return 0
        return 1 if 0 < n < self._opaque else text.count(self._rep) + 1

    def raw(self, n: int, rep: int = 1, comp: int | None = None, sub: int | None = None) -> str:
        """The encoded text at field/repetition/component/subcomponent (1-based), escapes kept."""
        text = _part(self._repetitions(n), rep - 1)
        if comp is None or (0 < n < self._opaque):
            return text if comp is None or (comp == 1 and sub in (None, 1)) else ""
        text = _part(text.split(self._comp), comp - 1)
        if sub is not None:
            text = _part(text.split(self._sub), sub - 1)
        return text

    def value(self, n: int, rep: int = 1, comp: int | None = None, sub: int | None = None) -> str:
        """Like :meth:`raw`, with escape sequences resolved and surrounding blanks removed."""
        return self._message.unescape(self.raw(n, rep, comp, sub)).strip()

    def components(self, n: int, rep: int = 1) -> list[list[str]]:
        """Repetition ``rep`` of field ``n`` as components of unescaped subcomponents."""
        text = _part(self._repetitions(n), rep - 1)
        unescape = self._message.unescape
        if 0 < n < self._opaque:
            return [[unescape(text).strip()]]
        return [[unescape(s).strip() for s in comp.split(self._sub)] for comp in text.split(self._comp)]


class Message:
    """An HL7 v2 message. Build it with :meth:`parse`.

    Segments are parsed when first asked for: a feed reading MSH and PID does not pay for the rest.
    """

    def __init__(self, lines: list[str], delimiters: Delimiters, charset: str, codec: str):
        self.delimiters = delimiters
        self.charset = charset  # MSH-18 as sent ("" when absent)
        self.codec = codec  # the Python codec the bytes were decoded with
        self._lines = lines
        self._stub = "MSH" + delimiters.field + delimiters.encoding_characters
        self._escapes = _escape_context(self._stub)
        self._parsed: dict[int, Segment] = {}
        self.segment_ids = [line.split(delimiters.field, 1)[0].strip() for line in lines]
        self.msh = self._segment_at(0)

    @classmethod
    def parse(cls, data: bytes | str) -> Message:
        text, codec = _decode(data) if isinstance(data, bytes) else (data, "utf-8")
        lines = [s for s in _SEGMENT_BREAK.split(text) if s.strip()]
        if not lines:
            raise HL7ParseError("empty message")
        lines[0] = lines[0].lstrip()
        if lines[0][:3] != "MSH":
            raise HL7ParseError("message does not start with an MSH segment")
        delimiters = _delimiters(lines[0])
        if any(line.startswith("MSH" + delimiters.field) for line in lines[1:]):
            raise HL7ParseError("more than one MSH segment in one message (batches are not accepted)")
        try:
            return cls(lines, delimiters, _msh18(lines[0]), codec)
        except Exception as exc:  # python-hl7, reading the delimiters for escapes, refuses some
            raise HL7ParseError(f"unparseable MSH segment ({type(exc).__name__})") from None

    def _segment_at(self, index: int) -> Segment:
        seg = self._parsed.get(index)
        if seg is None:
            # as python-hl7 reads a segment: trailing blanks dropped, split on the field separator
            line = self._lines[index].rstrip()
            sep = self.delimiters.field
            if index == 0:
                end = line.find(sep, 4)
                fields = [line[:3], sep, line[4:] if end == -1 else line[4:end]]
                if end != -1 and end + 1 < len(line):
                    fields += line[end + 1 :].split(sep)
                seg = Segment(fields, self, opaque=3)
            else:
                seg = Segment(line.split(sep), self)
            self._parsed[index] = seg
        return seg

    def segments(self, segment_id: str | None = None) -> list[Segment]:
        return [self._segment_at(i) for i, sid in enumerate(self.segment_ids)
                if segment_id is None or sid == segment_id]

    def segment(self, segment_id: str) -> Segment | None:
        """The first ``segment_id`` segment, or None."""
        try:
            return self._segment_at(self.segment_ids.index(segment_id))
        except ValueError:
            return None

    def raw_segment(self, segment_id: str) -> str | None:
        """The first ``segment_id`` segment as received (decoded, not parsed), e.g. to echo QPD."""
        try:
            return self._lines[self.segment_ids.index(segment_id)]
        except ValueError:
            return None

    def unescape(self, text: str) -> str:
        if self.delimiters.escape not in text:
            return text
        try:
            return str(self._escapes.unescape(text))
        except Exception:
            return text

    # MSH fields (HL7 v2.5 2.15.9)
    @property
    def sending_application(self) -> str:
        return self.msh.raw(3)

    @property
    def sending_facility(self) -> str:
        return self.msh.raw(4)

    @property
    def receiving_application(self) -> str:
        return self.msh.raw(5)

    @property
    def receiving_facility(self) -> str:
        return self.msh.raw(6)

    @property
    def message_type(self) -> str:
        return self.msh.value(9, 1, 1, 1)

    @property
    def trigger_event(self) -> str:
        return self.msh.value(9, 1, 2, 1)

    @property
    def message_structure(self) -> str:
        return self.msh.value(9, 1, 3, 1)

    @property
    def control_id(self) -> str:
        return self.msh.raw(10).strip()

    @property
    def processing_id(self) -> str:
        return self.msh.value(11, 1, 1, 1)

    @property
    def processing_id_raw(self) -> str:
        return self.msh.raw(11)

    @property
    def version(self) -> str:
        return self.msh.value(12, 1, 1, 1)


def _delimiters(msh: str) -> Delimiters:
    if len(msh) < 8:
        raise HL7ParseError("MSH segment too short to carry MSH-1 and MSH-2")
    field = msh[3]
    end = msh.find(field, 4)
    chars = msh[4:end] if end != -1 else msh[4:]
    every = field + chars
    if (
        not 4 <= len(chars) <= 5
        or len(set(every)) != len(every)
        or any(c.isalnum() or c.isspace() for c in every)
    ):
        raise HL7ParseError("MSH-1/MSH-2 do not hold valid field separator and encoding characters")
    return Delimiters(field, chars[0], chars[1], chars[2], chars[3], chars[4] if len(chars) == 5 else "")


@functools.lru_cache(maxsize=16)
def _escape_context(stub: str) -> hl7.Message:
    """A python-hl7 message holding only MSH-1/MSH-2, for resolving escape sequences."""
    return hl7.parse(stub)


def _msh18(first_line: str) -> str:
    """MSH-18's first repetition, read before the message is decoded or parsed."""
    if first_line[:3] != "MSH" or len(first_line) < 6:
        return ""
    fields = first_line.split(first_line[3])
    return fields[17].split(first_line[5])[0].strip() if len(fields) > 17 else ""


def _decode(data: bytes) -> tuple[str, str]:
    """Decode by MSH-18; without one, UTF-8 if the bytes are UTF-8, else ISO 8859-1."""
    head = re.split(rb"[\r\n]", data[:4096].lstrip(), maxsplit=1)[0].decode("latin-1")
    codec = _CHARSETS.get(_msh18(head).upper(), "")
    if codec:
        return data.decode(codec, errors="replace"), codec
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"
