"""The reference step of bench/gpu with Hugging Face transformers (README.md beside this file).

Qwen2VLForConditionalGeneration from the config GpuBench prints (Qwen2-VL-2B, random weights), bf16, sdpa attention
(transformers' default for Qwen2-VL, and what the .NET port's scaled_dot_product_attention computes); a 448 x 448
image's 1,024 patches (256 merged tokens) inside a 316-token prompt; generate with do_sample (top-k 50, T 1),
num_return_sequences = G = 8 as the official Visual-RFT trainer samples, max_new_tokens = min_new_tokens = 256 so that
every completion has the .NET run's length; then a GRPO-style update: forward on prompt + completion with the pixels
tiled G times (the official trainer's policy pass, docs/visual-rft-spec.md §2.1), log-softmax gathered at the completion tokens, a
surrogate loss with random advantages, backward. No optimizer and no reference model. Each configuration runs twice
and the second repetition is reported, with torch.cuda.max_memory_allocated and the nvidia-smi peak over both.

    python3 hf_step.py CONFIG_JSON [full] [checkpointing]
"""
import inspect, json, os, subprocess, sys, threading, time

import torch
import transformers

G, NEW, TEXT, SIDE = 8, 256, 60, 448


class SmiPeak:
    """Peak GPU memory used as nvidia-smi reports it, sampled every 20 ms (the measure GpuBench can take)."""

    def __init__(self, index):
        visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
        gpu = visible[index] if index < len(visible) else str(index)
        self.peak = self.last = -1
        try:
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", f"--id={gpu}", "-lms", "20"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            threading.Thread(target=self._read, daemon=True).start()
        except OSError:
            self.proc = None

    def _read(self):
        for line in self.proc.stdout:
            if line.strip().isdigit():
                self.last = int(line)
                self.peak = max(self.peak, self.last)

    def reset(self):
        time.sleep(0.06)
        self.peak = self.last

    def gib(self):
        time.sleep(0.06)
        return round(self.peak / 1024, 3) if self.peak >= 0 else None


def build(config_path, device):
    with open(config_path) as f:
        config = transformers.Qwen2VLConfig.from_dict(json.load(f))
    config._attn_implementation = "sdpa"
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        model = transformers.Qwen2VLForConditionalGeneration(config)   # transformers' own init (normal 0.02) on the GPU
    torch.set_default_dtype(torch.float32)
    model.tie_weights()
    return model, config


def prompt(config, device):
    """[im_start, text...] + vision_start + 256 image tokens + vision_end + [text..., im_end, im_start, text]: 316 tokens."""
    image_tokens = (SIDE // 28) ** 2
    g = torch.Generator().manual_seed(0)
    words = torch.randint(0, 150_000, (TEXT - 5,), generator=g).tolist()   # 5: im_start, vision_start/end, im_end, im_start
    ids = [151644] + words[:10] + [config.vision_start_token_id] + [config.image_token_id] * image_tokens + [config.vision_end_token_id] \
        + words[10:] + [151645, 151644]
    assert len(ids) == image_tokens + TEXT, len(ids)
    patches = (SIDE // 14) ** 2
    pixels = torch.randn(patches, 3 * 2 * 14 * 14, generator=g).to(device, torch.bfloat16)
    grid = torch.tensor([[1, SIDE // 14, SIDE // 14]], device=device)
    return torch.tensor([ids], device=device), pixels, grid


def step(model, config, ids, pixels, grid, extra):
    device = ids.device
    model.eval()   # generate with the KV cache: in training mode gradient checkpointing would switch it off
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pixels, image_grid_thw=grid,
                             do_sample=True, top_k=50, temperature=1.0, top_p=1.0, max_new_tokens=NEW, min_new_tokens=NEW,
                             num_return_sequences=G, pad_token_id=151643, **extra(ids))
    torch.cuda.synchronize()
    generate = time.perf_counter() - t0
    p = ids.shape[1]
    completion = out[:, p:]
    model.train()   # gradient checkpointing acts in training mode only; Qwen2-VL has no dropout
    t0 = time.perf_counter()
    mask = torch.ones_like(out)
    logits = model(input_ids=out, attention_mask=mask, pixel_values=pixels.repeat(G, 1), image_grid_thw=grid.repeat(G, 1), **extra(out)).logits
    logps = torch.log_softmax(logits[:, p - 1:-1].float(), -1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    advantages = torch.randn(G, 1, device=device)
    loss = -(torch.exp(logps - logps.detach()) * advantages).mean()
    loss.backward()
    torch.cuda.synchronize()
    update = time.perf_counter() - t0
    model.zero_grad(set_to_none=True)
    return generate, update, completion.shape[1]


def main():
    config_path, configs = sys.argv[1], sys.argv[2:] or ["full"]
    device = torch.device("cuda", 0)
    smi = SmiPeak(0)
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}, {torch.cuda.get_device_name(device)}", flush=True)
    t0 = time.perf_counter()
    model, config = build(config_path, device)
    print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters, random weights, built in {time.perf_counter() - t0:.1f} s", flush=True)
    ids, pixels, grid = prompt(config, device)
    # transformers 5 takes the image-token mask as mm_token_type_ids (the golden fixtures' make_golden.py, 5.17); 4.x has
    # no such input and generate refuses inputs that forward does not name
    takes_types = "mm_token_type_ids" in inspect.signature(model.forward).parameters or int(transformers.__version__.split(".")[0]) >= 5
    extra = (lambda x: {"mm_token_type_ids": (x == config.image_token_id).long()}) if takes_types else (lambda x: {})
    for name in configs:
        if name == "checkpointing":
            model.gradient_checkpointing_enable()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        smi.reset()
        for rep in range(2):
            generate, update, length = step(model, config, ids, pixels, grid, extra)
            print(f"{name} step {rep + 1}: generate {generate:.2f} s, update {update:.2f} s; {length} new tokens{' (warm-up)' if rep == 0 else ''}", flush=True)
        allocated = torch.cuda.max_memory_allocated(device) / 2**30
        peak = smi.gib()
        print(f"{name}: peak max_memory_allocated {allocated:.2f} GiB, nvidia-smi {peak} GiB", flush=True)
        print("RESULT " + json.dumps({"stack": "transformers", "config": name, "device": str(device), "generate_s": round(generate, 3),
                                      "update_s": round(update, 3), "completion_tokens": length, "peak_gib": peak,
                                      "peak_measure": "peak GPU memory used (nvidia-smi, 20 ms samples)" if peak is not None else "no nvidia-smi",
                                      "peak_allocated_gib": round(allocated, 3)}), flush=True)
        if name == "checkpointing":
            model.gradient_checkpointing_disable()


if __name__ == "__main__":
    main()
