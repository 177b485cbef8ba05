"""Plain sentences for request validation errors, instead of pydantic's wording.

FastAPI reports a body, query or path value it cannot accept as a list of pydantic errors
(``{"type": "int_parsing", "loc": ("body", "top_k"), "msg": "Input should be ..."}``). Each
becomes one sentence that names the field as the caller wrote it (``texts[2]``,
``options.cv_folds``) and says what it must be, never echoing the (possibly huge) input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})
_MAX_NAME = 64      # a field name longer than this is cut (JSON keys can be anything)
_MAX_PROBLEMS = 5   # sentences in one answer

_WHOLE = "{where} must be a whole number"
_NUMBER = "{where} must be a number"
_BOOL = "{where} must be true or false"
_OBJECT = "{where} must be a JSON object"
_DATETIME = "{where} must be a date and time such as 2026-11-01T00:00:00Z"
_SENTENCES = {
    "missing": "{where} is required",
    "extra_forbidden": "{where} is not a known field",
    "string_type": "{where} must be a string",
    "int_type": _WHOLE, "int_parsing": _WHOLE, "int_from_float": _WHOLE,
    "int_parsing_size": "{where} is too large a number",
    "float_type": _NUMBER, "float_parsing": _NUMBER,
    "finite_number": "{where} must be a finite number",
    "bool_type": _BOOL, "bool_parsing": _BOOL,
    "list_type": "{where} must be a list",
    "dict_type": _OBJECT, "model_type": _OBJECT, "model_attributes_type": _OBJECT,
    "greater_than_equal": "{where} must be at least {ge}",
    "greater_than": "{where} must be greater than {gt}",
    "less_than_equal": "{where} must be at most {le}",
    "less_than": "{where} must be less than {lt}",
    "string_too_short": "{where} must have at least {min_length} character(s)",
    "string_too_long": "{where} must have at most {max_length} characters",
    "too_short": "{where} must have at least {min_length} item(s)",
    "too_long": "{where} must have at most {max_length} items",
    "string_pattern_mismatch": "{where} must match the pattern {pattern}",
    "literal_error": "{where} must be {expected}",
    "enum": "{where} must be {expected}",
    "datetime_type": _DATETIME, "datetime_parsing": _DATETIME,
    "datetime_from_date_parsing": _DATETIME, "datetime_object_invalid": _DATETIME,
}


def field_path(loc: Sequence[Any]) -> str:
    """``("body", "texts", 2)`` -> ``texts[2]``; ``("query", "from")`` -> ``from``."""
    parts = list(loc)
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)[:_MAX_NAME]
    return path or "body"


def describe(errors: Sequence[Mapping[str, Any]], body: Any = None) -> tuple[str, str]:
    """(message, param): up to five sentences, and the field of the first problem.

    ``body``: the request body as received, to place a JSON syntax error (line, column).
    """
    sentences: list[str] = []
    param = ""
    for error in errors:
        sentence, where = _sentence(error, body)
        param = param or where
        if sentence not in sentences:
            sentences.append(sentence)
        if len(sentences) == _MAX_PROBLEMS:
            break
    return "; ".join(sentences) or "the request is not valid", param or "body"


def _sentence(error: Mapping[str, Any], body: Any) -> tuple[str, str]:
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    loc = error.get("loc", ())
    if kind == "json_invalid":
        return _json_syntax(ctx.get("error", "invalid JSON"), loc, body), "body"
    where = field_path(loc)
    if kind == "unknown_field":  # from shared.contracts.body.RequestBody
        parent, where = where, (f"{where}.{ctx['field']}" if where != "body" else ctx["field"])
        owner = f" of {parent}" if parent != "body" else ""
        return f"unknown field {where}; the allowed fields{owner} are {ctx['allowed']}", where
    if kind in ("value_error", "assertion_error"):
        text = str(ctx.get("error", error.get("msg", ""))).removeprefix("Assertion failed, ")
        if where == "body":
            return text, where
        parent, _, leaf = where.rpartition(".")
        if text.startswith(leaf.split("[")[0]):  # "threshold must be..." in options
            return f"{parent}.{text}" if parent else text, where
        return f"{where} {text}", where
    if kind == "missing" and where == "body":
        return "the request body is missing: send a JSON object", where
    if template := _SENTENCES.get(kind):
        try:
            return template.format(where=where, **ctx), where
        except KeyError:  # a context this pydantic version does not give: the generic form
            pass
    message = str(error.get("msg", "is not valid")).replace("Input should be", "must be")
    return f"{where} {message[:1].lower()}{message[1:]}", where


def _json_syntax(problem: str, loc: Sequence[Any], body: Any) -> str:
    position = loc[-1] if loc and isinstance(loc[-1], int) else None
    if position is None or not isinstance(body, str):
        return f"the body is not valid JSON: {problem}"
    line = body.count("\n", 0, position) + 1
    column = position - body.rfind("\n", 0, position)
    return f"the body is not valid JSON: {problem} at line {line}, column {column}"
