"""The OpenAPI document says what the API really answers (issue 10 point 14).

FastAPI documents the success answer and its own 422 body; bangfu's errors are ``{"code",
"message"}`` (plus ``detail`` for a malformed request) with the status of the error class, and
some inputs are checked by the use cases rather than by pydantic. :func:`describe` rewrites the
generated document once:

* every ``/api`` operation lists 401, 403, 404, 409 and 422 (and 413 when it takes a body) with
  the ``Error`` schema; logging in lists 401, 422 and 429;
* strings carry what the server accepts: no NUL character (``web/guard.py``), the enumerations
  the use cases check (states, sorts, triggers, budgets, formats, mappings, attachment kinds),
  the amount and payment-time syntax of :mod:`workflow.domain.money`.
"""

from __future__ import annotations

from typing import Any

import states
from workflow.app import attachments, purchases, views
from workflow.domain.money import MAX_YEAR, MIN_YEAR
from workflow.formats import ledger

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "stable error code, e.g. record.not_found"},
        "message": {"type": "string", "description": "what went wrong, in Chinese"},
        "detail": {"type": "array", "items": {"type": "object"},
                   "description": "for a malformed request: where and what kind"},
        "errors": {"type": "array", "items": {"type": "string"}, "description": "an import's bad rows (first 200)"},
        "total_errors": {"type": "integer"},
        "more_errors": {"type": "integer"},
    },
}
STATUS_TEXT = {401: "not logged in or token invalid", 403: "visible but not permitted (or CSRF)",
               404: "outside your view or no such item", 409: "refused by a rule, or a version conflict",
               413: "request body too large", 422: "bad input", 429: "too many failed logins"}

_DIGIT = "[0-9０-９]"
#: Yuan as :func:`workflow.domain.money.parse_yuan` reads them (at most 13 integer digits).
AMOUNT_PATTERN = (rf"^[-+]?(?:[￥¥]|人民币)?(?:{_DIGIT}{{1,13}}|{_DIGIT}{{1,3}}(?:[,，]{_DIGIT}{{3}}){{1,3}}"
                  rf"|{_DIGIT}(?:[,，]{_DIGIT}{{3}}){{4}})"
                  rf"(?:[.．]{_DIGIT}{{1,2}})?元?$")
_YEAR = "(?:20[0-9]{2}|2100)"
_LEAP = "(?:20(?:0[48]|[2468][048]|[13579][26])|2000)"
_DATE = (rf"(?:{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
         rf"|{_YEAR}-(?:0[13-9]|1[0-2])-(?:29|30)|{_YEAR}-(?:0[13578]|1[02])-31|{_LEAP}-02-29)")
#: A payment time: ISO date and time (seconds optional), naive = China time, years 2000..2100.
PAID_AT_PATTERN = rf"^{_DATE}[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?(?:Z|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])?$"
NO_NUL = "^[^\\u0000]*$"
NON_BLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"

_ENUMS: dict[str, list[str]] = {
    "state": list(states.STATES),
    "overdue": list(views.OVERDUE_FILTERS),
    "sort": list(views.RECORD_SORTS),
    "trigger": list(states.TRIGGERS),
    "budget": list(purchases.BUDGETS),
    "fmt": ["xlsx", "csv", "html"],
    "basis": ["budget", "retained"],
    "mapping": list(ledger.MAPPINGS),
    "kind": list(attachments.KINDS),
}
_PATTERNS = {"amount": AMOUNT_PATTERN, "paid_at": PAID_AT_PATTERN}
_NON_BLANK = {"display_name", "username", "order_no", "channel"}


def _string(schema: dict[str, Any], name: str) -> None:
    if schema.get("type") != "string" or "enum" in schema or schema.get("format") == "binary":
        return
    if name in _ENUMS:
        schema.pop("maxLength", None)
        schema["enum"] = _ENUMS[name]
    elif name in _PATTERNS:
        schema["pattern"] = _PATTERNS[name]
    elif schema.get("format") == "date":
        schema["pattern"] = rf"^{_DATE}$"
        schema.pop("format")
    elif "pattern" not in schema:
        schema["pattern"] = NON_BLANK if name in _NON_BLANK else NO_NUL


def _walk(schema: Any, name: str, components: dict[str, Any], seen: set[str]) -> None:
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        ref = schema["$ref"].rsplit("/", 1)[-1]
        if ref not in seen:
            seen.add(ref)
            _walk(components.get(ref), name, components, seen)
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            _walk(sub, name, components, seen)
    _string(schema, name)
    for prop, sub in schema.get("properties", {}).items():
        _walk(sub, prop, components, seen)
    if "items" in schema:
        _walk(schema["items"], name, components, seen)


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite FastAPI's generated document in place (see the module docstring) and return it."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    seen: set[str] = set()
    for path, methods in document.get("paths", {}).items():
        if not path.startswith("/api"):
            continue
        for method, op in methods.items():
            codes = [401, 422, 429] if (path, method) == ("/api/session", "post") else [401, 403, 404, 409, 422]
            if "requestBody" in op:
                codes.append(413)
            for code in codes:
                op.setdefault("responses", {})[str(code)] = {"description": STATUS_TEXT[code], "content": error_ref}
            for param in op.get("parameters", []):
                _walk(param.get("schema"), param["name"], components, seen)
            for media in op.get("requestBody", {}).get("content", {}).values():
                _walk(media.get("schema"), "", components, seen)
    return document


__all__ = ["AMOUNT_PATTERN", "MAX_YEAR", "MIN_YEAR", "PAID_AT_PATTERN", "describe"]
