"""Hypothesis strategies that turn a real message into a malformed one.

Three layers, from blind to structured:

* :func:`mutated_bytes`: byte-level edits of a seed (bit flips, deletions, duplications, splices
  with another seed, insertion of tokens that matter to the format, truncation), the classic
  mutation fuzzer's moves, so that a failure shrinks to the few edits that cause it;
* :func:`mutated_xml`: edits of a seed's element tree (drop, duplicate, move, rename or empty an
  element, set an attribute or a text to a hostile value), which keep the XML well-formed and
  so reach the ebRIM, stored-query and transaction code behind the parser;
* :func:`hostile_text`: values chosen to break parsers of XDS data types (CX, DTM, OIDs, the
  stored-query value syntax, ``str.format`` templates) mixed with arbitrary XML-safe text.
"""

from __future__ import annotations

import copy

from hypothesis import strategies as st
from lxml import etree

XML_TOKENS = (
    b"<", b">", b"/>", b"</", b"&", b"&amp;", b"&#0;", b"&#x110000;", b"&lt;", b"&unknown;", b"'", b'"',
    b"]]>", b"<![CDATA[", b"<!--", b"-->", b"<?xml version='1.0'?>", b"<?pi x?>",
    b"<!DOCTYPE x [<!ENTITY e 'e'>]>", b"xmlns=''", b"xmlns:rim='urn:x'", b" xmlns:a='b' a:a='1' ",
    b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"\xc3\x28", b"\xe2\x82", b"\xf0\x9f\x98\x80",
    b"urn:uuid:", b"urn:oid:", b"^^^&", b"&amp;ISO", b"cid:", b"%40", b"%",
)
MIME_TOKENS = (
    b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"--", b"\r\n--", b"Content-ID: <x@y>\r\n",
    b"Content-Type: application/xop+xml\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n", b"Content-Transfer-Encoding: x-uue\r\n",
    b": ", b" \t", b"=\r\n", b"=3D", b"====", b"\x00",
)
HL7_TOKENS = (
    b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"\r\n", b"\x0b", b"\x1c", b"\x1c\r", b'""',
    b"\\X0D\\", b"\\E\\", b"\\F\\", b"\\H\\", b"\\N\\", b"\\.br\\", b"\\Zxx\\", b"\\X\\", b"\\C2842\\",
    b"MSH|^~\\&|", b"PID|", b"MRG|", b"EVN|", b"ADT^A40", b"QBP^Q23", b"2.5", b"8859/1", b"UNICODE UTF-8",
    b"\xc3\x28", b"\xff",
)
DICOM_TOKENS = (
    b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0", b"\xfe\xff\x0d\xe0",
    b"SQ\x00\x00", b"UN\x00\x00", b"OB\x00\x00", b"UT\x00\x00", b"DICM", b"\x08\x00\x16\x00",
    b"\x08\x00\x18\x00", b"\x10\x00\x20\x00", b"\x20\x00\x0d\x00", b"\x02\x00\x10\x00",
    b"1.2.840.10008.1.2.1.99", b"1.2.840.10008.1.2.2", b"\x00" * 8,
)

XML_SAFE = st.characters(
    codec="utf-8",
    exclude_categories=("Cs",),
    exclude_characters="".join(chr(c) for c in range(32) if c not in (9, 10, 13)) + "\ufffe\uffff",
)

HOSTILE_VALUES = (
    "", " ", "\t\n", "urn:uuid:", "urn:uuid:00000000-0000-0000-0000-000000000000", "urn:uuid:zz-top",
    "Document01", "SubmissionSet01", "Folder01", "'", "''", "('a'", "('a','b')", "(", ")", "()", "(,)",
    "'a''b'", "('a',,'b')", "^^^", "^^^&&ISO", "x^^^&1.2&ISO", "&1.2.3&ISO", "|", "~", "\\", "1|a", "2|b",
    "99999999999999999999", "-1", "0", "1e400", "NaN", "%s%s%s", "{}", "{id}", "{0}", "{value!r}",
    "' OR '1'='1", "%", "_", "*", "\u202e", "\U0001f600", "é", "\ufeff", "a" * 257, "1." * 40, "1.2.3",
    "urn:oid:", "urn:oid:1.2.3", "19700101", "2024", "20241301", "99991231235959", "2024010203040506",
    "text/plain", "application/dicom", "Approved", "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
    "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated",
    "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember", "urn:ihe:iti:2007:AssociationType:RPLC",
    "urn:ihe:iti:2007:AssociationType:XFRM_RPLC", "LeafClass", "ObjectRef", "Original", "Reference",
    "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1", "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248",
    "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd", "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2",
    "cid:1.85b57d7287e4fa4b528a8f050c41f8ad829c20332f23b48d@apache.org", "cid:", "cid:%zz",
)

ATTRIBUTE_NAMES = (
    "id", "objectType", "mimeType", "status", "home", "lid", "classificationScheme", "classifiedObject",
    "classificationNode", "nodeRepresentation", "identificationScheme", "registryObject", "value",
    "associationType", "sourceObject", "targetObject", "name", "returnType", "returnComposedObjects", "href",
    "versionName", "isOpaque", "{http://www.w3.org/2003/05/soap-envelope}mustUnderstand",
    "{http://www.w3.org/2003/05/soap-envelope}role",
)


_HOSTILE = {n: st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(XML_SAFE, max_size=n)) for n in (80, 300)}


def hostile_text(max_size: int = 80) -> st.SearchStrategy[str]:
    if max_size in _HOSTILE:
        return _HOSTILE[max_size]
    return st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(XML_SAFE, max_size=max_size))


# Strategies are built once: building one per draw costs more than the edits themselves.
_INDEX = st.integers(0, 2**20)
_BYTE_OPS = st.sampled_from(("flip", "delete", "insert", "duplicate", "splice", "truncate", "overwrite"))
_BIT = st.integers(0, 7)
_DELETE_LENGTH = st.integers(1, 256)
_REPEAT = st.sampled_from((1, 1, 1, 2, 64))
_DUPLICATE_LENGTH = st.integers(1, 512)
_DUPLICATE_TIMES = st.integers(1, 4)
_SPLICE_LENGTH = st.integers(1, 1024)
_RANDOM_TOKEN = st.binary(min_size=1, max_size=16)
_BLOB = st.binary(min_size=1, max_size=32)
_TREE_OPS = st.sampled_from(("drop", "duplicate", "move", "rename", "clear", "set_attribute", "set_attribute",
                             "drop_attribute", "set_text", "set_text", "wrap"))
_WRAP_DEPTH = st.sampled_from((1, 2, 50))


def _pick(draw, items):  # noqa: ANN001, ANN202
    return items[draw(_INDEX) % len(items)]


@st.composite
def mutated_bytes(draw, seeds: list[bytes], tokens: tuple[bytes, ...] = XML_TOKENS, max_ops: int = 6) -> bytes:
    """A seed after 1..``max_ops`` byte-level edits."""
    data = bytearray(_pick(draw, seeds))
    token_or_random = st.one_of(st.sampled_from(tokens), _RANDOM_TOKEN)
    for _ in range(draw(st.integers(1, max_ops))):
        n = len(data)
        op = draw(_BYTE_OPS)
        at = draw(_INDEX) % (n + 1)
        if op == "flip" and n:
            data[min(at, n - 1)] ^= 1 << draw(_BIT)
        elif op == "delete":
            del data[at : at + draw(_DELETE_LENGTH)]
        elif op == "insert":
            data[at:at] = draw(token_or_random) * draw(_REPEAT)
        elif op == "duplicate" and n:
            data[at:at] = data[at : at + draw(_DUPLICATE_LENGTH)] * draw(_DUPLICATE_TIMES)
        elif op == "splice":
            other = _pick(draw, seeds)
            start = draw(_INDEX) % (len(other) + 1)
            data[at:at] = other[start : start + draw(_SPLICE_LENGTH)]
        elif op == "truncate":
            del data[at:]
        elif op == "overwrite" and n:
            blob = draw(_BLOB)
            data[at : at + len(blob)] = blob
    return bytes(data)


@st.composite
def mutated_xml(draw, seeds: list[bytes], max_ops: int = 5, keep_root: bool = True) -> bytes:
    """A seed (well-formed XML) after 1..``max_ops`` tree edits; the result stays well-formed."""
    root = etree.fromstring(_pick(draw, seeds))
    for _ in range(draw(st.integers(1, max_ops))):
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        el = _pick(draw, elements)
        parent = el.getparent()
        op = draw(_TREE_OPS)
        if op == "drop" and parent is not None:
            parent.remove(el)
        elif op == "duplicate" and parent is not None:
            parent.insert(parent.index(el), copy.deepcopy(el))
        elif op == "move" and parent is not None:
            inside = set(el.iter())
            target = _pick(draw, elements)
            if target not in inside and target is not parent:
                parent.remove(el)
                target.append(el)
        elif op == "rename" and (parent is not None or not keep_root):
            local = etree.QName(el).localname
            el.tag = (_pick(draw, elements).tag, "{urn:fuzz}" + local, local)[draw(_INDEX) % 3]
        elif op == "clear":
            el.clear()
        elif op == "set_attribute":
            el.set(_pick(draw, tuple(el.attrib.keys()) + ATTRIBUTE_NAMES), draw(hostile_text()))
        elif op == "drop_attribute" and el.attrib:
            del el.attrib[_pick(draw, tuple(el.attrib.keys()))]
        elif op == "set_text":
            el.text = draw(hostile_text(300))
        elif op == "wrap" and parent is not None:
            depth = draw(_WRAP_DEPTH)
            index = parent.index(el)
            outer = inner = etree.Element(el.tag)
            for _ in range(depth - 1):
                inner = etree.SubElement(inner, el.tag)
            parent.remove(el)
            inner.append(el)
            parent.insert(index, outer)
    return etree.tostring(root)


def chunked(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """``data`` cut at arbitrary points (how a network hands a body over)."""
    return st.lists(st.integers(0, len(data)), max_size=12).map(
        lambda cuts: [data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)], strict=True)]
    )


HL7_VALUES = (
    "", '""', "^", "^^^", "&&&", "~", "~~~", "\\", "\\E\\", "\\X0D0A\\", "\\Zfoo\\", "\\H\\x\\N\\", "\\.sp5\\",
    "ADT^A01", "ADT^A40^ADT_A39", "ADT^A47", "QBP^Q23^QBP_Q21", "ACK", "A01", "A40", "2.3", "2.3.1", "2.5",
    "2.9.1", "3.0", "2.x", "P", "T", "X", "8859/1", "UNICODE UTF-8", "ISO IR87", "UTF-16", "1" * 300,
    "FUZZ8802^^^&1.3.6.1.4.1.21367.2005.13.20.1000&ISO", "X^^^&1.3.6.1.4.1.21367.2005.13.20.1000&ISO",
    "^^^&1.3.6.1.4.1.21367.2005.13.20.1000&ISO", "Y^^^HOSP&1.2.3.4.5&ISO", "Z^^^&&", "\u00e9\u00e8", "\U0001f600",
)
_HL7_OPS = st.sampled_from(("drop_segment", "duplicate_segment", "swap_segments", "drop_field", "duplicate_field",
                            "set_field", "set_field", "set_field", "insert_field", "escape", "escape", "escape",
                            "escape", "separator", "msh2"))
_HL7_ESCAPES = st.sampled_from(("\\Zxx\\", "\\C2842\\", "\\M2442\\", "\\Xzz\\", "\\X0D\\", "\\\\", "\\E\\",
                                "\\.sp3\\", "\\.in+4\\", "\\H\\", "\\", "\\F"))
_HL7_VALUE = st.one_of(st.sampled_from(HL7_VALUES), st.text(max_size=40))
_SEPARATORS = st.sampled_from(("\r", "\n", "\r\n", "\n\r", "\r\r"))
_ENCODING_CHARACTERS = st.sampled_from(("^~\\&", "^~\\&#", "^~\\", "^^\\&", "#~\\&", "^~\\&\\", "", "^~\\&|", "ab12"))


@st.composite
def mutated_hl7(draw, seeds: list[bytes], max_ops: int = 5) -> bytes:
    """An HL7 v2 seed after 1..``max_ops`` edits of its segments and fields."""
    text = _pick(draw, seeds).decode("latin-1")
    segments = [s.split("|") for s in text.split("\r") if s]
    separator = "\r"
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(_HL7_OPS)
        i = draw(_INDEX) % len(segments) if segments else 0
        if op == "drop_segment" and segments:
            del segments[i]
        elif op == "duplicate_segment" and segments:
            segments.insert(i, list(segments[i]))
        elif op == "swap_segments" and len(segments) > 1:
            j = draw(_INDEX) % len(segments)
            segments[i], segments[j] = segments[j], segments[i]
        elif segments and op in ("drop_field", "duplicate_field", "set_field", "insert_field", "escape"):
            fields = segments[i]
            f = draw(_INDEX) % (len(fields) + 8)
            fields += [""] * max(0, f + 1 - len(fields))
            if op == "drop_field":
                del fields[f]
            elif op == "duplicate_field":
                fields.insert(f, fields[f])
            elif op == "set_field":
                fields[f] = draw(_HL7_VALUE)
            elif op == "escape":  # an escape sequence inside what the field holds (its data stays)
                k = draw(_INDEX) % (len(fields[f]) + 1)
                fields[f] = fields[f][:k] + draw(_HL7_ESCAPES) + fields[f][k:]
            else:
                fields.insert(f, draw(_HL7_VALUE))
        elif op == "separator":
            separator = draw(_SEPARATORS)
        elif op == "msh2" and segments and segments[0][0] == "MSH" and len(segments[0]) > 1:
            segments[0][1] = draw(_ENCODING_CHARACTERS)
    return (separator.join("|".join(f) for f in segments) + separator).encode("utf-8")
