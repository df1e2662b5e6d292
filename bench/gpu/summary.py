"""The table run.sh ends with: each configuration's figures from GpuBench (visualrft) and hf_step.py (transformers),
read from the RESULT lines in results.jsonl, and the targets of issue 17 checked on them.

    python3 summary.py results.jsonl
"""
import json, sys

HF_H200 = "transformers on an H200 (platform-notes.md §20): generate 4.57 s, update 0.30 s, peak 44.5 GiB (max_memory_allocated)"
FITS = {"checkpointing": 80, "lora": 24}   # GiB the configuration must fit in (issue 17, Targets)


def fmt(v, unit=""):
    return "-" if v is None else f"{v:.2f}{unit}"


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    print("| config | stack | generate s | update s | peak GiB (nvidia-smi) | max_memory_allocated GiB | MemoryPlan GiB | new tokens |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['stack']} | {fmt(r.get('generate_s'))} | {fmt(r.get('update_s'))} | {fmt(r.get('peak_gib'))} | "
              f"{fmt(r.get('peak_allocated_gib'))} | {fmt(r.get('plan_gib'))} | {fmt(r.get('completion_tokens'))} |")
    print(HF_H200)
    by = {(r["stack"], r["config"]): r for r in rows}
    for config in sorted({r["config"] for r in rows}):
        ours, theirs = by.get(("visualrft", config)), by.get(("transformers", config))
        if ours and theirs:
            for key in ("generate_s", "update_s"):
                verdict = "met" if ours[key] <= theirs[key] else "NOT met"
                print(f"target {config} {key[:-2]} no slower than transformers: {verdict} ({ours[key]:.2f} s vs {theirs[key]:.2f} s)")
        if ours and config in FITS:
            peak = ours.get("peak_gib")
            verdict = "unmeasured" if peak is None else "met" if peak <= FITS[config] else "NOT met"
            print(f"target {config} fits {FITS[config]} GiB: {verdict} (peak {fmt(peak, ' GiB')})")
    if ("visualrft", "checkpointing") not in by:
        print("target checkpointing fits 80 GiB: not measured (no checkpointing configuration in this build of GpuBench)")


if __name__ == "__main__":
    main()
