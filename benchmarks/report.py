"""How every benchmark ends: FIGURE lines and results/NAME.json (../shared/BENCHMARKS.md)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def report(name: str, figures: dict[str, float], targets: dict[str, tuple[str, str]]) -> None:
    """Print ``FIGURE name value unit target op-value`` lines and write the JSON (only
    when every figure was measured: a partial run leaves the last full one in place)."""
    print()
    for figure, (unit, target) in targets.items():
        if figure in figures:
            print(f"FIGURE {figure} {figures[figure]:.3f} {unit} target {target}")
    if set(targets) - set(figures):
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(
        json.dumps(
            {
                figure: {"value": figures[figure], "unit": unit, "target": target}
                for figure, (unit, target) in targets.items()
            },
            indent=2,
        )
    )
