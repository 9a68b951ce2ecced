"""Runs one measurement in this fresh process and prints its metrics as JSON.

python -m benchmarks._child '["memory", "offload", "asyncio", "quick"]'
"""

from __future__ import annotations

import json
import sys

from ._runner import measure_here
from ._scenarios import SCENARIOS


def main(request: str) -> None:
    scenario_name, implementation, loop, mode = json.loads(request)
    [scenario] = [s for s in SCENARIOS if s.name == scenario_name]
    print(json.dumps(measure_here(scenario, implementation, loop, mode)))


if __name__ == "__main__":
    main(sys.argv[1])
