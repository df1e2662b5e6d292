"""Visual-RFT rewards for TRL: ``GRPOTrainer(reward_funcs=visualrft_rewards.reward_funcs("detection"))``. Standard library
only.

TRL's GRPOTrainer (trl/trainer/grpo_trainer.py, ``_calculate_rewards``) calls each function as
``reward_func(prompts=prompts, completions=completions, completion_ids=..., **reward_kwargs)``, where reward_kwargs holds
every dataset column but "prompt" and "completion" as a list per batch (so ``solution``, and ``extra_info`` /
``data_source`` of our exports), completions are strings or, for conversational data, ``[{"role": "assistant",
"content": ...}]``; it logs each function under its ``__name__`` (``rewards/<name>/mean``), converts ``None`` to NaN
and sums the functions with ``reward_weights``, so one function per component with weight 1 gives the total. A
completion that cannot be scored gets None, TRL's way to leave it out.

The components of one batch are scored once: the functions of a task share the last batch's results.
"""

import importlib.util
import os
import sys

COMPONENTS = {
    "detection": ("iou", "confidence", "format"),
    "classification": ("accuracy", "format"),
    "grounding": ("giou", "format"),
}


def _client():
    # importable from anywhere, like the verl and EasyR1 shims: load the shared client by path once
    if "visualrft_client" not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "visualrft_client.py")
        spec = importlib.util.spec_from_file_location("visualrft_client", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["visualrft_client"] = module
    return sys.modules["visualrft_client"]


def _text(completion):
    if isinstance(completion, list):   # conversational: the assistant message(s) TRL built
        return "".join(m.get("content", "") if isinstance(m.get("content"), str) else "" for m in completion if isinstance(m, dict))
    return completion


_last = {"key": None, "results": None}


def _results(task, preset, completions, kwargs):
    client = _client()
    n = len(completions)
    solutions = kwargs.get("solution") or kwargs.get("ground_truth") or [None] * n
    extra = kwargs.get("extra_info") or [None] * n
    sources = kwargs.get("data_source") or [None] * n
    items = []
    for c, s, e, d in zip(completions, solutions, extra, sources):
        t, p = client.resolve_task(e, d, task, preset)
        items.append({"completion": _text(c), "solution": client.solution_of(s), "task": t, "preset": p})
    key = repr(items)
    if _last["key"] != key:
        _last["key"], _last["results"] = key, client.score(items)
    return _last["results"]


def _make(task, component, preset):
    def reward(prompts=None, completions=None, **kwargs):
        return [None if "error" in r else r.get(component) for r in _results(task, preset, completions, kwargs)]

    reward.__name__ = reward.__qualname__ = "visualrft_%s_%s" % (task, component)
    reward.__doc__ = "Visual-RFT %s reward, component %s (None where the item cannot be scored)." % (task, component)
    return reward


def reward_funcs(task, preset=None):
    """One reward callable per component of ``task``, named visualrft_<task>_<component>; their sum is the total.
    ``preset`` None: per row from extra_info, else VRFT_PRESET, else visual-rft."""
    if task not in COMPONENTS:
        raise ValueError("unknown task %r; expected one of %s" % (task, ", ".join(COMPONENTS)))
    return [_make(task, c, preset) for c in COMPONENTS[task]]
