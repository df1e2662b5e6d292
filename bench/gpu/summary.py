"""The table run.sh ends with: each configuration's figures from GpuBench (visualrft) and hf_step.py (transformers),
read from the RESULT lines in results.jsonl, and the targets of issue 17 checked on them (on a GPU at the reference
shape only).

    python3 summary.py results.jsonl
"""
import json, sys

HF_H200 = "transformers on an H200 (platform-notes.md §20): generate 4.57 s, update 0.30 s, peak 44.5 GiB (max_memory_allocated)"
FITS = {"checkpointing": 80, "lora": 24}   # GiB the configuration must fit in (issue 17, Targets)


def fmt(v):
    return "-" if v is None else f"{v:.2f}"


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    print("| config | stack | device | generate s | update s | peak GiB | max_memory_allocated GiB | MemoryPlan GiB | new tokens |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        tokens = r.get("completion_tokens")
        print(f"| {r['config']} | {r['stack']} | {r.get('device', '-')} | {fmt(r.get('generate_s'))} | {fmt(r.get('update_s'))} | {fmt(r.get('peak_gib'))} | "
              f"{fmt(r.get('peak_allocated_gib'))} | {fmt(r.get('plan_gib'))} | {'-' if tokens is None else f'{tokens:g}'} |")
    for measure in sorted({r.get("peak_measure") or "-" for r in rows}):
        print(f"peak: {measure}")
    print(HF_H200)
    judged = [r for r in rows if str(r.get("device", "")).startswith("cuda") and r.get("shape", "Qwen2-VL-2B shapes") == "Qwen2-VL-2B shapes"]
    if not judged:
        print("targets: not judged (no run on a CUDA device at the reference shape)")
        return
    by = {(r["stack"], r["config"]): r for r in judged}
    for config in sorted({r["config"] for r in judged}):
        ours, theirs = by.get(("visualrft", config)), by.get(("transformers", config))
        if ours and theirs:
            for key in ("generate_s", "update_s"):
                verdict = "met" if ours[key] <= theirs[key] else "NOT met"
                print(f"target {config}: {key[:-2]} no slower than transformers in this run: {verdict} ({ours[key]:.2f} s vs {theirs[key]:.2f} s)")
        if ours and config in FITS:
            peak = ours.get("peak_gib")
            verdict = "unmeasured" if peak is None else "met" if peak <= FITS[config] else "NOT met"
            print(f"target {config}: fits {FITS[config]} GiB: {verdict} (peak {fmt(peak)} GiB)")
    for config in FITS:
        if ("visualrft", config) not in by:
            print(f"target {config}: fits {FITS[config]} GiB: not measured")


if __name__ == "__main__":
    main()
