"""Visual-RFT rewards for EasyR1: ``worker.reward.reward_function=interop/easyr1/visualrft_reward.py:compute_score``,
with ``worker.reward.reward_function_kwargs='{task: detection, preset: visual-rft}'``. Standard library only.

EasyR1 (verl/workers/reward/function.py) loads this file by path, reads the module's REWARD_TYPE to pick its batch or
sequential manager, and calls ``partial(reward_fn, **config.reward_function_kwargs)`` with a list of RewardInput dicts
``{"response": str, "response_length": int, "ground_truth": str}`` (batch; the response decoded with
``skip_special_tokens``), expecting a list of dicts whose ``"overall"`` becomes the reward and whose every key is
logged as a metric. EasyR1 passes no data source or extra info, so the task comes from the keyword arguments (or
VRFT_TASK). An item that cannot be scored raises ValueError naming why.
"""

import importlib.util
import os
import sys

REWARD_NAME = "visualrft"
REWARD_TYPE = "batch"


def _client():
    # loaded by path like this file (EasyR1 uses importlib.util.spec_from_file_location): see interop/verl for the same
    if "visualrft_client" not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "visualrft_client.py")
        spec = importlib.util.spec_from_file_location("visualrft_client", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["visualrft_client"] = module
    return sys.modules["visualrft_client"]


def compute_score(reward_inputs, task=None, preset=None):
    """[{"overall": total, "<component>": value, ...}] for EasyR1's batch reward manager."""
    client = _client()
    if isinstance(reward_inputs, dict):
        raise ValueError("visualrft reward: REWARD_TYPE is batch, so EasyR1 passes a list of inputs; got one dict")
    task, preset = client.resolve_task(None, None, task, preset)
    items = [{"completion": r["response"], "solution": client.solution_of(r["ground_truth"]), "task": task, "preset": preset}
             for r in reward_inputs]
    scores = []
    for result in client.score(items):
        if "error" in result:
            raise ValueError("visualrft reward: " + result["error"])
        values = client.numbers(result)
        score = {"overall": values.pop("total")}
        score.update(values)
        scores.append(score)
    return scores
