"""How every benchmark ends: FIGURE lines and results/NAME.json (../shared/BENCHMARKS.md)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine(note: str = "") -> str:
    """The report's machine line: cores, Python, and how long one Ed25519 signature check
    takes right now. This shared machine's speed changes by half again within hours, and
    every figure moves with it: compare runs only at a like check time."""
    from carechain.crypto.suite import DEFAULT

    seed = DEFAULT.generate_private_key()
    key, message = DEFAULT.public_key(seed), b"x" * 300
    signature = DEFAULT.sign(seed, message)
    start = time.perf_counter()
    for _ in range(2000):
        DEFAULT.verify(key, message, signature)
    check_us = (time.perf_counter() - start) / 2000 * 1e6
    return (
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}; an Ed25519 check takes {check_us:.0f} us "
        f"now{note}"
    )


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
