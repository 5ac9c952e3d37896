"""ifharness: verifiable instruction-following benchmarks, scored exactly and fast.

Python API::

    import ifharness
    task = ifharness.load_task("ifeval", data="input_data.jsonl")
    result = ifharness.score(task, "responses.jsonl")
    result.metrics["prompt_level_strict_acc"]
"""

from .loader import Task, load_task
from .scoring import ScoreResult, score

__version__ = "0.1.0"

__all__ = ["ScoreResult", "Task", "__version__", "load_task", "score"]
