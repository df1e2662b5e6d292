"""The interop shims against ``vrft score``: every scorable line of examples/ and a seeded fuzz corpus, through the
reward server (VRFT_REWARD_URL) and through the ``vrft score`` pipe, each shim called exactly as its engine calls it,
a 1,000-item batch, and an item that cannot be scored. Standard library only; run with Debian's python3:

    VRFT_CLI="dotnet src/VisualRft.Cli/bin/Release/net10.0/vrft.dll" python3 -m unittest discover -s interop/tests -v
"""

import importlib.util
import json
import math
import os
import random
import shlex
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = shlex.split(os.environ.get("VRFT_CLI", "vrft"))
TASKS = ("detection", "classification", "grounding")
PRESETS = ("visual-rft", "strict")

SOLUTIONS = {
    "detection": ["<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}]</answer>",
                  "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}, {'Position': [500, 500, 700, 700], 'Confidence': 1}]</answer>",
                  "<answer>No Objects</answer>"],
    "classification": ["<answer>lotus</answer>", "<answer>2012 BMW M3 Coupe</answer>", "<answer></answer>"],
    "grounding": ["<answer> (120,330),(560,900) </answer>", "<answer>(0,0),(1000,1000)</answer>"],
}
# pieces of answers as a model (or an attacker) writes them, as in tests/VisualRft.Tests/Rewards/RewardFuzzTests.cs
PIECES = ["<think>", "</think>", "<answer>", "</answer>", "[", "]", "{", "}", "'Position'", "\"Position\"", ": ", ", ",
          "'Confidence'", "0.9", "1.5", "-3", "NaN", "Infinity", "-Infinity", "null", "100", "300", "1e308", "1e400",
          "(", ")", "(120,330),(560,900)", "No Objects", "\n", " ", "\t", "lotus", " or ", "'", "\"", "BMW", "\u0130",
          "\u03a3", "\ud800", "\udc00", "\u0663", "[{'Position': [101, 99, 302, 298], 'Confidence': 0.8}]"]


def load(name, relative):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, relative))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


verl = load("visualrft_verl", "interop/verl/visualrft_reward.py")
easyr1 = load("visualrft_easyr1", "interop/easyr1/visualrft_reward.py")
trl = load("visualrft_trl", "interop/trl/visualrft_rewards.py")


def corpus(task):
    """(completion, solution) pairs: every line of examples/<task>.jsonl that holds two strings, then a seeded fuzz set."""
    pairs = []
    with open(os.path.join(ROOT, "examples", task + ".jsonl"), encoding="utf-8") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:
                continue   # not JSON: an engine never hands such a line to a reward function
            if isinstance(obj, dict) and isinstance(obj.get("completion"), str) and isinstance(obj.get("solution"), str):
                pairs.append((obj["completion"], obj["solution"]))
    rng = random.Random(18)
    for _ in range(150):
        completion = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 24)))
        if rng.random() < 0.5:
            completion = "<think>" + completion + "</think><answer>" + "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12))) + "</answer>"
        pairs.append((completion, rng.choice(SOLUTIONS[task])))
    return pairs


def vrft_score(task, preset, pairs):
    """What ``vrft score`` prints for the pairs, one object per line, numbers as floats."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8", delete=False) as f:
        for c, s in pairs:
            f.write(json.dumps({"completion": c, "solution": s}) + "\n")
    try:
        out = subprocess.run(CLI + ["score", "--task", task, "--preset", preset, f.name], capture_output=True, check=True).stdout
    finally:
        os.unlink(f.name)
    non_finite = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
    rows = [json.loads(l) for l in out.decode("utf-8").splitlines()]
    assert len(rows) == len(pairs), (len(rows), len(pairs))
    return [{k: non_finite.get(v, v) if isinstance(v, str) else float(v) for k, v in r.items() if k not in ("line", "failure")} for r in rows]


def same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


class ShimsMatchVrftScore:
    """The checks, run once per transport by the subclasses below."""

    def setUp(self):
        trl._last["key"] = None

    def assertSameValues(self, expected, got, total_key, where):
        self.assertEqual(set(expected), set(got) - {total_key} | {"total"} if total_key != "total" else set(got), where)
        for k, v in expected.items():
            self.assertTrue(same(v, got[total_key if k == "total" else k]), "%s: %s %r != %r" % (where, k, v, got.get(k)))

    def test_verl_compute_score_equals_vrft_score_on_every_line(self):
        for task in TASKS:
            pairs = corpus(task)
            for preset in PRESETS:
                expected = vrft_score(task, preset, pairs)
                for i, ((completion, solution), want) in enumerate(zip(pairs, expected)):
                    # as verl/workers/reward_manager/naive.py (10a6180e, l. 81-92) calls it: keyword arguments, extra_info the parquet
                    # row's dict with the num_turns verl adds
                    got = verl.compute_score(data_source="visualrft/shapes-" + task, solution_str=completion,
                                             ground_truth=solution, extra_info={"index": i, "preset": preset, "num_turns": None})
                    self.assertSameValues(want, got, "score", "%s/%s line %d" % (task, preset, i + 1))

    def test_easyr1_batch_equals_vrft_score(self):
        for task in TASKS:
            pairs = corpus(task)
            for preset in PRESETS:
                expected = vrft_score(task, preset, pairs)
                # as verl/workers/reward/function.py (EasyR1) calls a batch function: RewardInput dicts, kwargs from config
                inputs = [{"response": c, "response_length": len(c), "ground_truth": s} for c, s in pairs]
                got = easyr1.compute_score(inputs, task=task, preset=preset)
                self.assertEqual(len(expected), len(got))
                for i, (want, score) in enumerate(zip(expected, got)):
                    self.assertSameValues(want, score, "overall", "%s/%s item %d" % (task, preset, i + 1))

    def test_trl_components_equal_vrft_score(self):
        for task in TASKS:
            pairs = corpus(task)
            for preset in PRESETS:
                expected = vrft_score(task, preset, pairs)
                funcs = trl.reward_funcs(task, preset)
                columns = {"solution": [s for _, s in pairs], "extra_info": [{"task": task, "preset": preset}] * len(pairs)}
                # as trl/trainer/grpo_trainer.py _calculate_rewards calls it; conversational completions
                completions = [[{"role": "assistant", "content": c}] for c, _ in pairs]
                got = {f.__name__: f(prompts=[[{"role": "user", "content": "Detect."}]] * len(pairs), completions=completions,
                                     completion_ids=[[0]] * len(pairs), **columns) for f in funcs}
                for name in got:
                    self.assertTrue(name.startswith("visualrft_%s_" % task))
                for i, want in enumerate(expected):
                    total = 0.0
                    for name, values in got.items():
                        component = name[len("visualrft_%s_" % task):]
                        self.assertTrue(same(want[component], values[i]), "%s/%s item %d %s" % (task, preset, i + 1, component))
                        total += values[i]
                    self.assertTrue(same(want["total"], total) or math.isclose(want["total"], total, rel_tol=1e-15), (want, total))

    def test_a_batch_of_1000_and_an_item_that_cannot_be_scored(self):
        pairs = (corpus("detection") * 8)[:1000]
        expected = vrft_score("detection", "visual-rft", pairs)
        # verl's BatchRewardManager (verl/workers/reward_manager/batch.py, verify): lists, one call
        got = verl.compute_score_batch(data_sources=["visualrft/shapes-detection"] * 1000, solution_strs=[c for c, _ in pairs],
                                       ground_truths=[json.dumps({"solution": s, "image_size": [640, 480]}) for _, s in pairs],
                                       extra_infos=[None] * 1000)
        self.assertEqual(1000, len(got))
        for i, (want, score) in enumerate(zip(expected, got)):
            self.assertSameValues(want, score, "score", "item %d" % (i + 1))
        # a ground truth that is not text: verl and EasyR1 raise naming it, TRL gives None and scores the others
        with self.assertRaisesRegex(ValueError, "the solution must be a string, got NoneType"):
            verl.compute_score("visualrft/shapes-detection", pairs[0][0], None)
        with self.assertRaisesRegex(ValueError, "cannot tell the task"):
            verl.compute_score("openai/gsm8k", pairs[0][0], pairs[0][1])
        with self.assertRaisesRegex(ValueError, "the solution must be a string, got int"):
            easyr1.compute_score([{"response": "x", "response_length": 1, "ground_truth": 3}], task="detection")
        iou = trl.reward_funcs("detection")[0]
        values = iou(prompts=["p", "p"], completions=[pairs[0][0], pairs[1][0]], solution=[None, pairs[1][1]])
        self.assertIsNone(values[0])
        self.assertEqual(expected[1]["iou"], values[1])


class ThroughTheServer(ShimsMatchVrftScore, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = subprocess.Popen(CLI + ["serve-rewards", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = cls.server.stdout.readline().decode("utf-8")
        if not first.startswith("listening on "):
            raise RuntimeError("vrft serve-rewards did not start: " + first + cls.server.stderr.read().decode("utf-8"))
        os.environ["VRFT_REWARD_URL"] = first.split()[2]
        # the request log goes to the server's stdout: drain it so the pipe never fills
        import threading
        threading.Thread(target=cls.server.stdout.read, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        del os.environ["VRFT_REWARD_URL"]
        cls.server.terminate()
        cls.server.wait(timeout=30)
        assert cls.server.returncode == 0, cls.server.returncode


class ThroughTheVrftScorePipe(ShimsMatchVrftScore, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.environ.pop("VRFT_REWARD_URL", None)
        os.environ["VRFT_CLI"] = " ".join(shlex.quote(c) for c in CLI)


if __name__ == "__main__":
    unittest.main()
