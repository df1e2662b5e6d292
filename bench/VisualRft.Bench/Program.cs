using System.Diagnostics;
using TorchSharp;
using VisualRft.Models.Qwen2VL;
using VisualRft.Torch;
using static TorchSharp.torch;

TorchRuntime.EnsureLoaded();
var sw = Stopwatch.StartNew();
var cfg = Qwen2VLConfig.Qwen2VL2B();
var l = nn.Linear(8960, 1536, device: torch.META);
Console.WriteLine($"linear {sw.ElapsedMilliseconds}"); sw.Restart();
var e = nn.Embedding(151936, 1536, device: torch.META);
Console.WriteLine($"emb {sw.ElapsedMilliseconds}"); sw.Restart();
var t = new Qwen2TextModel(cfg.Text, torch.META, ScalarType.BFloat16);
Console.WriteLine($"text {sw.ElapsedMilliseconds}"); sw.Restart();
var v = new VisionTower(cfg.Vision, false, torch.META, ScalarType.BFloat16);
Console.WriteLine($"vision {sw.ElapsedMilliseconds}"); sw.Restart();
