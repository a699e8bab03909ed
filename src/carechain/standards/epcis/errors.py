"""The one error of the EPCIS codec: ``InvalidEpcis``, naming the path into the document."""

from __future__ import annotations

from carechain.errors import InvalidInput

_SHOWN = 60


class InvalidEpcis(InvalidInput):
    """An EPCIS document (or a carechain event given to the exporter) that cannot be converted.

    ``path`` is where in the input the problem is, written as JSON paths are
    in the EPCIS standard's own prose (``epcisBody.eventList[3].childEPCs[0]``;
    empty for the document as a whole); ``problem`` says what is wrong. The
    message is ``"<path>: <problem>"``. ``unsupported`` is True when the
    document is valid EPCIS but says something carechain's drugs contract has
    no call for (a TransformationEvent, bizStep ``inspecting``, an error
    declaration ...): ``import_document(..., skip_unsupported=True)`` skips
    such events instead of refusing the document.
    """

    code = "invalid_epcis"

    def __init__(self, path: str, problem: str, *, unsupported: bool = False) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem
        self.unsupported = unsupported


def shown(value: object) -> str:
    """``value`` as it may appear in a message: quoted, control characters escaped, cut short."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > _SHOWN:
        text = text[:_SHOWN] + "..."
    return ascii(text) if isinstance(value, str) else text


def kind_of(value: object) -> str:
    """The JSON name of ``value``'s type, for messages (``an object``, ``a list`` ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
