"""Visual-RFT rewards for verl: ``reward.custom_reward_function.path=interop/verl/visualrft_reward.py``, ``name=compute_score``
(or ``name=compute_score_batch`` with ``reward_model.reward_manager=batch``). Standard library only.

verl's NaiveRewardManager (verl/workers/reward_manager/naive.py at 10a6180e, ``__call__``) decodes each response with
``skip_special_tokens=True`` (l. 79), reads ``ground_truth`` from ``non_tensor_batch["reward_model"]`` and ``extra_info``
(a dict it adds "num_turns" to, l. 81-85), calls ``self.compute_score(data_source=..., solution_str=response_str,
ground_truth=..., extra_info=...)`` (l. 87-92), takes the reward from ``score["score"]`` and appends every key to
``reward_extra_info`` (l. 94-98; so the keys must be numeric: they are averaged in validation). BatchRewardManager (verl/workers/reward_manager/batch.py,
``verify``) calls ``compute_score(data_sources=, solution_strs=, ground_truths=, extra_infos=, **reward_kwargs)``.

Scores come from ``vrft serve-rewards`` at VRFT_REWARD_URL, else from a ``vrft score`` pipe (see visualrft_client.py).
An item that cannot be scored raises ValueError naming why: verl needs a number, and a made-up one would train on it.
"""

import importlib.util
import os
import sys


def _client():
    # verl imports this file by path (importlib.util.spec_from_file_location), so the shared client beside it is not on
    # sys.path: load it by path once and share the module with the other shims.
    if "visualrft_client" not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "visualrft_client.py")
        spec = importlib.util.spec_from_file_location("visualrft_client", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["visualrft_client"] = module
    return sys.modules["visualrft_client"]


def _item(data_source, solution_str, ground_truth, extra_info, task=None, preset=None):
    client = _client()
    task, preset = client.resolve_task(extra_info, data_source, task, preset)
    return {"completion": solution_str, "solution": client.solution_of(ground_truth), "task": task, "preset": preset}


def _result(result):
    if "error" in result:
        raise ValueError("visualrft reward: " + result["error"])
    values = _client().numbers(result)
    out = {"score": values.pop("total")}
    out.update(values)
    return out


def compute_score(data_source, solution_str, ground_truth, extra_info=None, task=None, preset=None, **kwargs):
    """{"score": total, "<component>": value, ...} for one response (verl's NaiveRewardManager / reward loop)."""
    return _result(_client().score([_item(data_source, solution_str, ground_truth, extra_info, task, preset)])[0])


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos, task=None, preset=None, **kwargs):
    """A list of compute_score results in one round trip (verl's BatchRewardManager)."""
    n = len(solution_strs)
    data_sources = data_sources if data_sources is not None else [None] * n
    extra_infos = extra_infos if extra_infos is not None else [None] * n
    items = [_item(d, s, g, e, task, preset) for d, s, g, e in zip(data_sources, solution_strs, ground_truths, extra_infos)]
    return [_result(r) for r in _client().score(items)]
