"""Request parsers that turn every malformed body into a 400 (DRF's own let two through)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, Mapping):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


class BadJSON(ParseError):
    """A JSON body that is not JSON, or JSON no database can store: 400 ``bad_json`` (the code
    the webhooks answer for the same thing)."""

    default_code = "bad_json"


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, plus: deeply nested arrays (RecursionError) and lone UTF-16
    surrogates (``"\\ud800"``, which PostgreSQL cannot store: a 500 there) are refused. Every
    refusal is ``BadJSON``."""

    def parse(self, stream: IO[Any], media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise BadJSON("the body is not JSON: nested too deeply") from None
        except ParseError as exc:
            detail = str(exc.detail).removeprefix("JSON parse error - ")
            raise BadJSON(f"the body is not JSON: {detail}") from None
        try:
            bad = _has_lone_surrogate(data)
        except RecursionError:  # pragma: no cover - the parser's own limit comes first
            bad = True
        if bad:
            raise BadJSON("the body is not storable text: a string holds an unpaired UTF-16 "
                          "surrogate (\\ud800-\\udfff)")
        return data


class YAMLTextParser(BaseParser):
    """A pipeline definition sent as the raw body (``Content-Type: application/yaml``):
    parsed as ``{"yaml": <text>}``; the service validates the YAML itself."""

    media_type = "application/yaml"

    def parse(self, stream: IO[Any], media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> dict[str, str]:
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        except UnicodeDecodeError:
            raise ParseError("the YAML body is not UTF-8 text") from None
        return {"yaml": text}


class TextYAMLParser(YAMLTextParser):
    media_type = "text/yaml"


def dumps_canonical(data: Any) -> str:
    """Stable text of parsed request data (for idempotency fingerprints)."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str,
                      separators=(",", ":"))
