"""FHIR JSON representation rules that the pydantic models let through.

fhir.resources validates in pydantic's lax mode: it accepts ``"valueBoolean":
"true"``, ``"valueInteger": true``, ``"value": "1.5"`` for a decimal, JSON
``null`` for a required element, and empty arrays and objects. The FHIR JSON
format (https://hl7.org/fhir/R4/json.html) does not:

* booleans are JSON ``true``/``false``; integer, unsignedInt and positiveInt are
  JSON numbers without a fraction; decimals are JSON numbers; every other
  primitive is a JSON string (section 2.6.2, "JSON representation of primitive
  elements");
* an element that repeats is always an array, and one that does not never is
  (2.6.2.4);
* ``null`` appears only inside arrays of primitives, to line them up with their
  ``_element`` extension arrays (2.6.2.5); empty objects, arrays and strings
  are not allowed ("elements SHALL have a value or children", 2.6.2);
* ``resourceType`` of a contained or bundled resource names a real resource.

``check_shape`` walks the JSON against the model's element tables and reports
the first breach with its element path. It also reports unknown elements, so
that the error a client sees names the element, whichever check runs first.
"""

from __future__ import annotations

import decimal
from typing import Any

from carechain.errors import InvalidFhir
from carechain.standards.fhir.models import (
    BOOLEAN,
    COMPLEX,
    DECIMAL,
    INTEGER,
    RESOURCE,
    STRING,
    Element,
    element_table,
    resource_class,
)

_PRIMITIVE = frozenset({BOOLEAN, INTEGER, DECIMAL, STRING})
_EXPECTED = {
    BOOLEAN: "a JSON boolean (true or false)",
    INTEGER: "a JSON integer (no fraction, no exponent, not -0)",
    DECIMAL: "a JSON number",
    STRING: "a JSON string",
    COMPLEX: "a JSON object",
    RESOURCE: "a JSON object (a resource)",
}


def check_shape(resource: dict[str, Any], model: Any, path: str) -> None:
    """Check a resource's JSON against ``model`` (its R4B class); ``path`` names the resource."""
    _check_object(resource, model, path, is_resource=True)


def _check_object(obj: dict[str, Any], model: Any, path: str, *, is_resource: bool) -> None:
    if not obj:
        raise InvalidFhir(
            path, "an empty object is not allowed (an element has a value or children)"
        )
    table = element_table(model)
    for name, value in obj.items():
        if is_resource and name == "resourceType":
            continue
        element = table.get(name)
        where = f"{path}.{name}"
        if element is None:
            raise InvalidFhir(where, "unknown element")
        if value is None:
            raise InvalidFhir(where, "null is not allowed (leave the element out)")
        if element.repeats:
            if not isinstance(value, list):
                raise InvalidFhir(where, "repeats, so it must be a JSON array")
            if not value:
                raise InvalidFhir(where, "an empty array is not allowed (leave the element out)")
            nullable = element.kind in _PRIMITIVE or name.startswith("_")
            for index, item in enumerate(value):
                if item is None:
                    if not nullable:
                        raise InvalidFhir(f"{where}[{index}]", "null is not allowed here")
                    continue
                _check_value(item, element, f"{where}[{index}]")
        else:
            if isinstance(value, list):
                raise InvalidFhir(where, "does not repeat, so it must not be a JSON array")
            _check_value(value, element, where)


def _check_value(value: Any, element: Element, path: str) -> None:
    kind = element.kind
    if kind == STRING:
        ok = isinstance(value, str)
        if ok and not value:
            raise InvalidFhir(path, "an empty string is not allowed (leave the element out)")
    elif kind == COMPLEX:
        ok = isinstance(value, dict)
        if ok:
            _check_object(value, element.model, path, is_resource=False)
    elif kind == RESOURCE:
        ok = isinstance(value, dict)
        if ok:
            _check_resource(value, path)
    elif kind == BOOLEAN:
        ok = isinstance(value, bool)
    elif kind == INTEGER:
        ok = type(value) is int
    else:  # DECIMAL: parsed as int, float or DecimalLiteral
        ok = isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)
    if not ok:
        raise InvalidFhir(path, f"must be {_EXPECTED[kind]}")


def _check_resource(value: dict[str, Any], path: str) -> None:
    name = value.get("resourceType")
    if not isinstance(name, str):
        raise InvalidFhir(f"{path}.resourceType", "required element is missing")
    model = resource_class(name)
    if model is None:
        raise InvalidFhir(f"{path}.resourceType", f"{name[:64]!r} is not an R4 resource type")
    _check_object(value, model, path, is_resource=True)
