"""Visual-RFT rewards for Python training engines: the one client behind the verl, EasyR1 and TRL shims.

Standard library only. Scores go to the reward server named by VRFT_REWARD_URL (``vrft serve-rewards``, e.g.
``http://127.0.0.1:8000``) or, without one, to ``vrft score`` child processes kept open as pipes (one per task and
preset; the command is VRFT_CLI, default ``vrft``). Either way the values are those of ``vrft score``: the same C# code
scores them.

An item is ``{"completion": str, "solution": str, "task": str, "preset": str}``; a result is the object ``vrft score``
writes for it, numbers as floats (its "NaN"/"Infinity" strings become float values), or ``{"error": ...}`` for an item
that cannot be scored.
"""

import json
import os
import shlex
import subprocess
import threading
import urllib.error
import urllib.request

TASKS = ("detection", "classification", "grounding")
PRESETS = ("visual-rft", "strict")
DEFAULT_PRESET = "visual-rft"

# The server's default --max-batch is 16,384; smaller requests keep each one well inside its timeout.
_CHUNK = 4096
_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def resolve_task(extra_info=None, data_source=None, task=None, preset=None):
    """(task, preset) of one item: extra_info["task"] / ["preset"] where the engine passes extra info, else a task name
    inside the data source name (our exports write "visualrft/<dataset>-<task>"), else the given defaults (the shim's
    keyword arguments, or VRFT_TASK / VRFT_PRESET). The task may stay None: that item is then an error."""
    if isinstance(extra_info, dict):
        task = extra_info.get("task") or task
        preset = extra_info.get("preset") or preset
    if task is None and isinstance(data_source, str):
        found = [t for t in TASKS if t in data_source.lower()]
        if len(found) == 1:
            task = found[0]
    task = task or os.environ.get("VRFT_TASK")
    preset = preset or os.environ.get("VRFT_PRESET") or DEFAULT_PRESET
    return task, preset


def _number(value):
    return _NON_FINITE.get(value, value) if isinstance(value, str) else float(value)


def _decode(obj):
    """A vrft score object with its component values as floats; "line", "failure" and "error" kept as they are."""
    return {k: (v if k in ("line", "failure", "error") else _number(v)) for k, v in obj.items()}


def _item_error(item):
    """The reason an item cannot be sent at all, or None."""
    if item.get("task") not in TASKS:
        return "cannot tell the task of this item: give extra_info['task'], a data source naming %s, or VRFT_TASK; got %r" % (
            ", ".join(TASKS), item.get("task"))
    if item.get("preset") not in PRESETS:
        return "unknown preset %r; expected one of %s" % (item.get("preset"), ", ".join(PRESETS))
    return None


class _ServerScorer:
    def __init__(self, url, timeout=120):
        self.url = url.rstrip("/") + "/score"
        self.timeout = timeout

    def score(self, items):
        results = []
        for start in range(0, len(items), _CHUNK):
            chunk = items[start:start + _CHUNK]
            body = json.dumps(chunk).encode("utf-8")
            request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    answer = json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                raise RuntimeError("reward server %s answered %d: %s" % (self.url, e.code, e.read().decode("utf-8", "replace"))) from None
            results.extend(answer)
        return results


class _PipeScorer:
    """``vrft score --task T --preset P`` kept running; a batch is written as JSON lines by a thread while its answers
    are read here, so neither pipe can fill up and block the other."""

    def __init__(self, command):
        self.command = command
        self.children = {}
        self.lock = threading.Lock()

    def _child(self, task, preset):
        child = self.children.get((task, preset))
        if child is None or child.poll() is not None:
            child = subprocess.Popen(self.command + ["score", "--task", task, "--preset", preset],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.children[(task, preset)] = child
        return child

    def score(self, items):
        results = [None] * len(items)
        groups = {}
        for i, item in enumerate(items):
            groups.setdefault((item["task"], item["preset"]), []).append(i)
        with self.lock:
            for (task, preset), indices in groups.items():
                child = self._child(task, preset)
                lines = b"".join(json.dumps({"completion": items[i]["completion"], "solution": items[i]["solution"]}).encode("utf-8") + b"\n"
                                 for i in indices)

                def write(data=lines, stream=child.stdin):
                    stream.write(data)
                    stream.flush()

                writer = threading.Thread(target=write, daemon=True)
                writer.start()
                for i in indices:
                    line = child.stdout.readline()
                    if not line:
                        raise RuntimeError("vrft score (%s) stopped: %s" % (" ".join(self.command), child.stderr.read().decode("utf-8", "replace").strip()))
                    results[i] = json.loads(line)
                writer.join()
        return results

    def close(self):
        for child in self.children.values():
            child.stdin.close()
            child.wait(timeout=30)
        self.children.clear()


_scorer = None
_scorer_key = None


def _get_scorer():
    global _scorer, _scorer_key
    url = os.environ.get("VRFT_REWARD_URL")
    key = ("url", url) if url else ("cli", os.environ.get("VRFT_CLI", "vrft"))
    if _scorer is None or _scorer_key != key:
        if isinstance(_scorer, _PipeScorer):
            _scorer.close()
        _scorer = _ServerScorer(url) if url else _PipeScorer(shlex.split(key[1]))
        _scorer_key = key
    return _scorer


def score(items):
    """Results for ``items`` in order (see the module docstring); never raises for an item, only for a transport that fails."""
    results = [None] * len(items)
    send, where = [], []
    for i, item in enumerate(items):
        problem = _item_error(item)
        if problem is None and not isinstance(item.get("completion"), str):
            problem = "the completion must be a string, got %s" % type(item.get("completion")).__name__
        if problem is None and not isinstance(item.get("solution"), str):
            problem = "the solution must be a string, got %s" % type(item.get("solution")).__name__
        if problem is None:
            send.append(item)
            where.append(i)
        else:
            results[i] = {"line": i + 1, "error": problem}
    if send:
        for i, obj in zip(where, _get_scorer().score(send)):
            results[i] = _decode(obj)
    return results


def solution_of(ground_truth):
    """The solution text in a ground truth: the text itself, or the "solution" of our exports' dict (which also holds
    the image size of the coordinate frame)."""
    if isinstance(ground_truth, dict):
        return ground_truth.get("solution")
    if isinstance(ground_truth, str) and ground_truth.startswith("{"):
        try:
            parsed = json.loads(ground_truth)
        except ValueError:
            return ground_truth
        if isinstance(parsed, dict) and "solution" in parsed:
            return parsed["solution"]
    return ground_truth


def numbers(result):
    """The component values and total of a scored result (no "line" or "failure")."""
    return {k: v for k, v in result.items() if k not in ("line", "failure", "error")}
