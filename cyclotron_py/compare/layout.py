"""The stable JSON text of a comparison document: one entry per line, encoded in C in batches."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

_STDLIB = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
_MSGSPEC = msgspec.json.Encoder(order="sorted")
_SPACED = msgspec.json.format
_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
# Text json's encoder may hold (a lone surrogate) survives the trip through bytes unchanged.
_UTF8 = "utf-8"
_KEEP = "surrogatepass"

EncodeMany = Callable[[Sequence[Any]], Sequence[bytes]]


def dumps(doc: Mapping[str, Any]) -> str:
    """The stable JSON text of a comparison document.

    Keys sorted; the top level and its mappings are laid out one entry per line, as are lists
    of objects below them (recommendations, drift entries), everything deeper on that line.
    A change to one capability changes one line of a diff. Each line's value is the text
    ``json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))`` gives;
    the values of one container are encoded by msgspec in one call and split again (five times
    faster than json's C encoder line by line on a large fleet; json's indent= falls back to its
    pure-Python encoder, ten times slower again). ``dumps_stdlib`` is the reference.
    """
    return dumps_utf8(doc).decode(_UTF8, _KEEP)


def dumps_utf8(doc: Mapping[str, Any]) -> bytes:
    """``dumps(doc)`` as UTF-8 bytes, for writing (no trip through a str of the whole text)."""
    return _dumps(doc, _encode_many)


def dump_utf8(doc: Mapping[str, Any], write: Callable[[bytes], Any]) -> None:
    """``dumps_utf8(doc)`` handed to ``write`` in pieces as they are laid out (one per entry of the
    top level and of its mappings), so writing overlaps encoding (manifest_io.atomic_writer)."""
    out: list[Any] = []
    _layout(doc, 0, out, b"", _DictsOnce(_encode_many), write)
    out.append(b"\n")
    write(b"".join(out))


def dumps_stdlib(doc: Mapping[str, Any]) -> str:
    """The same text, each value through json's encoder: what ``dumps`` is held to (tests)."""
    return _dumps(doc, _stdlib_many).decode(_UTF8, _KEEP)


def _dumps(doc: Mapping[str, Any], encode_many: EncodeMany) -> bytes:
    out: list[Any] = []  # bytes and msgspec.Raw slices
    _layout(doc, 0, out, b"", _DictsOnce(encode_many))
    out.append(b"\n")
    return b"".join(out)


def _stdlib_many(values: Sequence[Any]) -> list[bytes]:
    return [_STDLIB.encode(v).encode(_UTF8, _KEEP) for v in values]


def _encode_many(values: Sequence[Any]) -> Sequence[bytes]:
    """Each value's text, as json writes it, from one msgspec call where that gives the same text.

    msgspec writes floats with an exponent differently (1e16, not 1e+16) and refuses what json
    accepts (lone surrogates, non-string keys): such values go through json itself. Floats only
    reach a line as rounded percentages (no exponent) or in free-form ``details`` from a manifest,
    so only those are looked at."""
    for value in values:
        if type(value) is float or (type(value) is dict and value.get("details") and _has_float(value["details"])):
            return _stdlib_many(values)
    try:
        return _ITEMS.decode(_SPACED(_MSGSPEC.encode(values), indent=0))
    except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
        return _stdlib_many(values)


class EncodedOnce:
    """``encode_many`` for batches of objects that recur *by identity* (hosts share recommendation
    and gap dicts, plan items): each object's text is made once, in one batch call for those not
    seen yet, and found again by ``id()``. Safe while the caller's document holds every object
    (no id is reused) and nothing changes one after it was encoded. Used by this layout, the plan
    file, the plan id, the generated playbook and the plan summary."""

    __slots__ = ("encode_many", "texts")

    def __init__(self, encode_many: Callable[[list[Any]], Sequence[Any]]) -> None:
        self.encode_many = encode_many
        self.texts: dict[int, Any] = {}

    def __call__(self, values: Sequence[Any]) -> list[Any]:
        texts = list(map(self.texts.get, map(id, values)))
        if None in texts:
            todo = [i for i, text in enumerate(texts) if text is None]
            for i, text in zip(todo, self.encode_many([values[i] for i in todo]), strict=True):
                texts[i] = self.texts[id(values[i])] = text
        return texts


class _DictsOnce(EncodedOnce):
    """EncodedOnce for containers of dicts; other values (ids, names, numbers) encoded as they come."""

    __slots__ = ()

    def __call__(self, values: Sequence[Any]) -> list[Any]:
        if not values or type(values[0]) is not dict:
            return list(self.encode_many(list(values)))
        return super().__call__(values)


def _has_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _expands(value: Any, depth: int) -> bool:
    """Laid out one entry per line: the top level and its mappings, and lists down to depth 2 whose
    first item is a mapping; everything else is one value on its line."""
    if not value or depth > 2:
        return False
    if isinstance(value, Mapping):
        return depth < 2
    return isinstance(value, list) and (depth < 2 or isinstance(value[0], Mapping))


def _layout(
    value: Any, depth: int, out: list[Any], lead: bytes, encode_many: EncodeMany,
    write: Callable[[bytes], Any] | None = None,
) -> None:
    pad = b"  " * depth
    if not _expands(value, depth):
        out += (pad, lead, encode_many([value])[0])
        return
    inner = b"  " * (depth + 1)
    if isinstance(value, Mapping):
        pairs = sorted(value.items())
        children = [item for _, item in pairs]
        leads = [bytes(key) + b": " for key in encode_many([str(key) for key, _ in pairs])]
        opening, closing = b"{\n", b"}"
    else:
        children = value
        leads = []
        opening, closing = b"[\n", b"]"
    out += (pad, lead, opening)
    nested = [i for i, item in enumerate(children) if _expands(item, depth + 1)] if depth < 2 else []
    if not nested:
        texts = encode_many(children)
        if leads:
            between = b",\n" + inner
            out.append(inner)
            for i, (key, text) in enumerate(zip(leads, texts, strict=True)):
                out += (between, key, text) if i else (key, text)
        else:
            out += (inner, (b",\n" + inner).join(texts))
    else:
        for i, item in enumerate(children):
            if i:
                out.append(b",\n")
            _layout(item, depth + 1, out, leads[i] if leads else b"", encode_many, write)
            if write is not None:  # hand over what is laid out so far
                write(b"".join(out))
                out.clear()
    out.append(b"\n" + pad + closing)
