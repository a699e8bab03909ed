"""FHIR validation of many resources at once, in a worker process.

Validating a 2 KB Observation with the fhir.resources models costs about
200 µs of pure Python, most of the node's work when a hospital imports a
Bundle. The node's interpreter runs one thread at a time, so a worker process
validates the resources of a large request on the other core while the node
goes on serving and committing. Small requests are validated in place, where
feeding the worker would cost more than it saves.
"""

from __future__ import annotations

from dataclasses import dataclass

from carechain.errors import InvalidFhir
from carechain.node.verifier import SpawnedWorkers, exit_with_parent
from carechain.standards.fhir import parse_resource

IN_PLACE_BELOW = 8


@dataclass(frozen=True)
class Checked:
    """What the chain records of a valid resource (its bytes are the caller's)."""

    resource_type: str
    category: str


def check_many(resources: list[bytes]) -> list[Checked | tuple[str, str]]:
    """Each resource's type and category, or the (path, problem) that makes it invalid.

    Runs in the worker: errors come back as values, since an ``InvalidFhir``
    does not survive pickling with its path.
    """
    out: list[Checked | tuple[str, str]] = []
    for data in resources:
        try:
            parsed = parse_resource(data)
        except InvalidFhir as exc:
            out.append((exc.path, exc.problem))
        else:
            out.append(Checked(parsed.resource_type, parsed.category))
    return out


def _warm(parent: int) -> None:
    exit_with_parent(parent)
    check_many([])  # imports happen on first use of a type; the models load lazily


class FhirChecker(SpawnedWorkers):
    def __init__(self, workers: int = 1) -> None:
        super().__init__(workers, _warm)

    def __call__(self, resources: list[bytes]) -> list[Checked]:
        """Validate ``resources``; raise ``InvalidFhir`` for the first invalid one, its
        index in the message (``records[i]``)."""
        if len(resources) < IN_PLACE_BELOW or self.workers < 1:
            results = check_many(resources)
        else:
            pool = self.pool()
            size = -(-len(resources) // self.workers)
            futures = [
                pool.submit(check_many, resources[i : i + size])
                for i in range(0, len(resources), size)
            ]
            results = [result for future in futures for result in future.result()]
        checked = []
        for index, result in enumerate(results):
            if not isinstance(result, Checked):
                path, problem = result
                raise InvalidFhir(path, f"{problem} (records[{index}])")
            checked.append(result)
        return checked
