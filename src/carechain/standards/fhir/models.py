"""The fhir.resources R4B models, loaded lazily, and their errors as FHIR element paths.

Importing every model costs seconds, so a model module is imported the first
time its resource type is seen (``fhir.resources.R4B.<type in lower case>``)
and its class is cached. ``element_table`` reads a model's fields once into a
table of FHIR JSON kinds that ``shape.check_shape`` walks.

``validate_model`` runs the pydantic model and turns the first error into
``InvalidFhir(path, problem)``: ``loc = ('code', 'coding', 0, 'system')`` under
``Observation`` becomes ``Observation.code.coding[0].system``.
"""

from __future__ import annotations

import importlib
import re
import typing
from dataclasses import dataclass
from typing import Any

from carechain.errors import InvalidFhir

_PACKAGE = "fhir.resources.R4B"
_RESOURCE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ABSTRACT = frozenset({"Resource", "DomainResource"})
_classes: dict[str, Any] = {}
_tables: dict[Any, dict[str, Element]] = {}

# JSON kinds of FHIR elements (https://hl7.org/fhir/R4/json.html#primitive).
BOOLEAN, INTEGER, DECIMAL, STRING, COMPLEX, RESOURCE = (
    "boolean",
    "integer",
    "decimal",
    "string",
    "complex",
    "resource",
)


@dataclass(frozen=True, slots=True)
class Element:
    """One element of a model as it appears in FHIR JSON."""

    kind: str  # one of BOOLEAN, INTEGER, DECIMAL, STRING, COMPLEX, RESOURCE
    repeats: bool  # a JSON array in FHIR JSON (max cardinality above 1)
    model: Any  # the model class of a COMPLEX element, else None


def resource_class(name: str) -> Any | None:
    """The R4B model class of a concrete resource type, or None if R4B has no such resource."""
    cls = _classes.get(name)
    if cls is not None or name in _classes:
        return cls
    cls = None
    if _RESOURCE_NAME.fullmatch(name) and name not in _ABSTRACT:
        try:
            module = importlib.import_module(f"{_PACKAGE}.{name.lower()}")
        except ImportError:
            module = None
        candidate = getattr(module, name, None)
        if candidate is not None and _is_resource(candidate, name):
            cls = candidate
    _classes[name] = cls
    return cls


def _is_resource(candidate: Any, name: str) -> bool:
    resource: Any = importlib.import_module(f"{_PACKAGE}.resource").Resource
    if not (isinstance(candidate, type) and issubclass(candidate, resource)):
        return False
    model: Any = candidate
    return bool(model.get_resource_type() == name)


def element_table(model: Any) -> dict[str, Element]:
    """The model's elements by JSON name (``class``, ``_status``), read once and cached."""
    table = _tables.get(model)
    if table is None:
        table = {}
        for field in model.model_fields.values():
            name = field.alias or ""
            if name in ("", "fhir_comments"):
                continue  # fhir_comments is a library extra, not an R4 element
            table[name] = _element(field.annotation)
        _tables[model] = table
    return table


def _element(annotation: Any) -> Element:
    inner, repeats = _strip(annotation)
    types = importlib.import_module("fhir_core.types")
    if isinstance(inner, type) and issubclass(inner, types.FhirBase):
        inner = typing.cast(Any, inner)
        if issubclass(inner, types.FhirElementOrResourceBase):
            return Element(RESOURCE, repeats, None)
        return Element(COMPLEX, repeats, inner.get_model_klass())
    base = typing.get_args(inner)[0] if typing.get_origin(inner) is typing.Annotated else inner
    if base is bool:
        return Element(BOOLEAN, repeats, None)
    if base is int:
        return Element(INTEGER, repeats, None)
    if isinstance(base, type) and base.__name__ == "Decimal":
        return Element(DECIMAL, repeats, None)
    # str, date, dateTime, instant, time, base64Binary, uri, uuid, xhtml: JSON strings
    return Element(STRING, repeats, None)


def _strip(annotation: Any) -> tuple[Any, bool]:
    """``Optional[List[Optional[X]]]`` -> ``(X, True)``; ``X | None`` -> ``(X, False)``."""
    repeats = False
    current = annotation
    for _ in range(4):
        origin = typing.get_origin(current)
        if origin in (typing.Union, _UnionType):
            args = [arg for arg in typing.get_args(current) if arg is not type(None)]
            current = args[0]
        elif origin is list:
            repeats = True
            current = typing.get_args(current)[0]
        else:
            break
    return current, repeats


_UnionType = type(int | None)


# --- pydantic errors as FHIR element paths ---------------------------------------

_CHOICE = re.compile(r"from this list \[([^\]]*)\]")
_FORMAT = re.compile(r"(\w+) value string does not match spec regex", re.IGNORECASE)
_FORMATS = {
    "date": "date (YYYY, YYYY-MM or YYYY-MM-DD)",
    "datetime": "dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a time zone)",
    "instant": "instant (YYYY-MM-DDThh:mm:ss[.sss] with a time zone)",
    "time": "time (hh:mm:ss)",
    "decimal": "decimal",
}


def validate_model(model: Any, resource: dict[str, Any], root: str) -> None:
    """Validate ``resource`` with the R4B ``model``; the first error becomes ``InvalidFhir``.

    ``root`` is the path of the resource itself (``Observation`` or
    ``Bundle.entry[2].resource``).
    """
    pydantic = importlib.import_module("pydantic")
    try:
        model.model_validate(resource)
    except pydantic.ValidationError as exc:
        error = exc.errors(include_url=False, include_context=False, include_input=False)[0]
        path, problem = translate(error, root)
        raise InvalidFhir(path, problem) from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise InvalidFhir(root, f"does not validate as R4B {model.__name__}") from exc


def translate(error: Any, root: str) -> tuple[str, str]:
    """One pydantic error (``loc``, ``type``, ``msg``) as a FHIR path and a plain problem."""
    path = root
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "resource_type":
            path += ".resourceType"
        elif part != "root":
            path += f".{part}"
    kind = error["type"]
    message = " ".join(str(error["msg"]).split())
    message = message.removeprefix("Value error, ")
    if kind in ("missing", "model_field_validation.missing"):
        return path, "required element is missing"
    if kind == "extra_forbidden":
        return path, "unknown element"
    if kind == "fhir-validation-wrong-resource-type":
        return path, "resourceType does not match the resource"
    choice = _CHOICE.search(message)
    if choice is not None:
        names = [name.strip(" '\"") for name in choice.group(1).split(",")]
        stem = _common_prefix(names)
        if "but got multiple" in message:
            return f"{path}.{stem}[x]", f"only one of {', '.join(names)} may be given"
        return f"{path}.{stem}[x]", f"required element is missing (one of {', '.join(names)})"
    fmt = _FORMAT.search(message)
    if fmt is not None:
        name = fmt.group(1).lower()
        return path, f"is not a valid FHIR {_FORMATS.get(name, name)}"
    if kind == "string_pattern_mismatch":
        return path, f"does not match the FHIR pattern ({message.removeprefix('String ')})"
    return path, message


def _common_prefix(names: list[str]) -> str:
    stem = names[0] if names else ""
    for name in names[1:]:
        while not name.startswith(stem):
            stem = stem[:-1]
    return stem
