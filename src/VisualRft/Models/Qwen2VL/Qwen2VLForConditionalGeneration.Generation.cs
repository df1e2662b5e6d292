using TorchSharp;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Models.Qwen2VL;

/// <summary>
/// How to pick tokens. HF order: temperature, then top-k, then top-p; <see cref="Greedy"/> takes the argmax.
/// A row stops after its first token in <see cref="StopTokenIds"/>; later positions hold <see cref="PadTokenId"/>.
/// </summary>
public sealed record SamplingOptions(
    int MaxNewTokens = 64, bool Greedy = false, double Temperature = 1.0, int TopK = 0, double TopP = 1.0,
    IReadOnlyList<long>? StopTokenIds = null, long PadTokenId = 151643);

/// <summary>
/// Completions of a <see cref="Qwen2VLForConditionalGeneration.Generate"/> call, row b·G + j for sample j of prompt b:
/// ids [N, C], mask [N, C] (1 through the first stop token, 0 after), and, when asked for, the log-probability of each
/// chosen token under the temperature-scaled distribution before top-k/top-p, log_softmax(logits / T) — what GRPO's loss
/// takes as the token's log-prob (TRL) — or log_softmax(logits) when greedy; 0 where masked.
/// C is the number of steps run: fewer than MaxNewTokens when every row stopped early.
/// </summary>
public sealed record GenerationOutput(Tensor CompletionIds, Tensor CompletionMask, Tensor? LogProbs) : IDisposable
{
    public void Dispose()
    {
        CompletionIds.Dispose();
        CompletionMask.Dispose();
        LogProbs?.Dispose();
    }
}

public sealed partial class Qwen2VLForConditionalGeneration
{
    /// <summary>
    /// Samples <paramref name="numSamples"/> completions for each of the B left-padded prompts. The prompts are
    /// prefilled once (with their precomputed image embeddings); the key-value cache is then repeated for the G
    /// samples and decoded token by token. Reproducible with <paramref name="generator"/> (on the model's device).
    /// </summary>
    public GenerationOutput Generate(Tensor promptIds, Tensor promptMask, ImageInputs? images, SamplingOptions options,
        int numSamples = 1, Generator? generator = null, bool returnLogProbs = false)
    {
        if (numSamples < 1) throw new ArgumentOutOfRangeException(nameof(numSamples), numSamples, "must be at least 1");
        if (options.MaxNewTokens < 1) throw new ArgumentOutOfRangeException(nameof(options), options.MaxNewTokens, "MaxNewTokens must be at least 1");
        if (!promptMask.shape.SequenceEqual(promptIds.shape))
            throw new ArgumentException($"prompt mask [{string.Join(",", promptMask.shape)}] does not match prompt ids [{string.Join(",", promptIds.shape)}]");
        using var finalizers = TorchRuntime.HoldFinalizers();   // the decode loop makes thousands of temporary Scalars
        using var noGrad = torch.no_grad();
        using var outer = NewDisposeScope();
        var (b, p) = (promptIds.shape[0], promptIds.shape[1]);
        var g = numSamples;
        var n = b * g;
        var capacity = p + options.MaxNewTokens;
        var device = Device;

        // Prefill: one pass per prompt, then the cache rows are repeated for the samples.
        var (pos, deltas) = GetRopeIndex(promptIds, promptMask, images?.GridThw);
        var keyMask = torch.zeros([b, capacity], ScalarType.Bool, device);
        keyMask.narrow(1, 0, p).copy_(promptMask.to_type(ScalarType.Bool).to(device));
        var cache = KvCache.Allocate(Config.Text, b, g == 1 ? capacity : p, DType, device);
        var hidden = model.forward(EmbedInputs(promptIds, images), pos.to(device), keyMask.narrow(1, 0, p), cache, 0);
        var logits = Logits(hidden.narrow(1, p - 1, 1)).squeeze(1).to_type(ScalarType.Float32);
        if (g > 1)
        {
            var repeated = cache.RepeatInterleave(g, p, capacity);
            cache.Dispose();
            cache = repeated;
        }
        using var _ = cache;
        if (g > 1)
        {
            logits = logits.repeat_interleave(g, 0);
            keyMask = keyMask.repeat_interleave(g, 0);
        }
        // Real tokens before decode step c: the prompt's unpadded length + c (see RopeIndex for the delta).
        var basePos = (deltas.to(device) + promptMask.to(device).to_type(ScalarType.Int64).sum(1, keepdim: true)).repeat_interleave(g, 0);
        var stops = torch.tensor((options.StopTokenIds ?? []).ToArray(), ScalarType.Int64, device);
        var finished = torch.zeros(n, ScalarType.Bool, device);
        var ids = new List<Tensor>();
        var masks = new List<Tensor>();
        var lps = new List<Tensor>();
        for (int c = 0; c < options.MaxNewTokens; c++)
        {
            using var step = NewDisposeScope();
            var next = SampleNext(logits, options, generator);
            var live = finished.logical_not();
            next = torch.where(live, next, torch.full_like(next, options.PadTokenId));
            ids.Add(next.MoveToOuterDisposeScope());
            masks.Add(live.to_type(ScalarType.Int64).MoveToOuterDisposeScope());
            if (returnLogProbs)
                lps.Add((options.Greedy || options.Temperature == 1.0 ? logits : logits / options.Temperature)
                    .log_softmax(-1).gather(-1, next.unsqueeze(-1)).squeeze(-1).mul(live).MoveToOuterDisposeScope());
            var nowFinished = finished.logical_or(torch.isin(next, stops)).MoveToOuterDisposeScope();
            finished.Dispose();
            finished = nowFinished;
            if (c == options.MaxNewTokens - 1 || finished.all().item<bool>()) break;

            // Decode one token at cache slot p + c; its M-RoPE position is the same on all three axes.
            keyMask.narrow(1, p + c, 1).fill_(true);
            var position = (basePos + c).unsqueeze(0).expand(3, n, 1);
            var h = model.forward(model.embed_tokens.forward(next.unsqueeze(1)), position, keyMask.narrow(1, 0, p + c + 1), cache, p + c);
            var newLogits = Logits(h).squeeze(1).to_type(ScalarType.Float32).MoveToOuterDisposeScope();
            logits.Dispose();
            logits = newLogits;
        }
        var result = new GenerationOutput(
            torch.stack(ids, 1).MoveToOuterDisposeScope(),
            torch.stack(masks, 1).MoveToOuterDisposeScope(),
            returnLogProbs ? torch.stack(lps, 1).MoveToOuterDisposeScope() : null);
        return result;
    }

    /// <summary>Temperature, top-k and top-p filtering as HF's logits warpers, then multinomial; or argmax.</summary>
    static Tensor SampleNext(Tensor logits, SamplingOptions o, Generator? generator)
    {
        if (o.Greedy) return logits.argmax(-1);
        if (o.Temperature <= 0) throw new ArgumentOutOfRangeException(nameof(o), o.Temperature, "Temperature must be positive (use Greedy for argmax)");
        var l = o.Temperature == 1.0 ? logits : logits / o.Temperature;
        if (o.TopK > 0 && o.TopK < l.shape[^1])
        {
            var kth = l.topk(o.TopK).values.narrow(-1, o.TopK - 1, 1);
            l = l.masked_fill(l.lt(kth), double.NegativeInfinity);
        }
        if (o.TopP < 1.0)
        {
            // Sort ascending; drop tokens whose cumulative probability is ≤ 1 − top_p, always keeping the most likely.
            var (sorted, order) = l.sort(-1, descending: false);
            var remove = sorted.softmax(-1).cumsum(-1).le(1 - o.TopP);
            remove.narrow(-1, remove.shape[^1] - 1, 1).fill_(false);
            l = l.masked_fill(remove.scatter(-1, order, remove), double.NegativeInfinity);
        }
        return l.softmax(-1).multinomial(1, generator: generator).squeeze(-1);
    }

    /// <summary>
    /// Per-token log-probabilities of given completions, as GRPO needs (spec §8): a full forward over
    /// [prompt ; completion] and log_softmax(logits[t] / temperature) gathered at token t+1, for the completion span:
    /// [N, C]. <paramref name="images"/> hold the image embeddings of these N rows (<see cref="RepeatForSamples"/>
    /// builds them from per-prompt embeddings, keeping the gradient path to the vision tower). Runs with gradient when
    /// autograd is enabled; wrap in <c>torch.no_grad()</c> for the old-policy and reference passes.
    /// </summary>
    public Tensor CompletionLogProbs(Tensor promptIds, Tensor promptMask, Tensor completionIds, Tensor? completionMask,
        ImageInputs? images, double temperature = 1.0)
    {
        if (completionIds.dim() != 2 || completionIds.shape[0] != promptIds.shape[0])
            throw new ArgumentException($"completion ids [{string.Join(",", completionIds.shape)}] do not match {promptIds.shape[0]} prompt rows");
        using var scope = NewDisposeScope();
        var p = promptIds.shape[1];
        var c = completionIds.shape[1];
        var comp = completionIds.to(Device);
        var mask = torch.cat([promptMask.to(Device).to_type(ScalarType.Int64),
            (completionMask ?? torch.ones_like(completionIds)).to(Device).to_type(ScalarType.Int64)], 1);
        // Completion tokens are embedded as text even if a sampled id equals the image token.
        var embeds = torch.cat([EmbedInputs(promptIds, images), model.embed_tokens.forward(comp)], 1);
        var ids = torch.cat([promptIds.to(Device), comp], 1);
        var (pos, _) = GetRopeIndex(ids, mask, images?.GridThw);
        var hidden = model.forward(embeds, pos.to(Device), mask);
        var logits = Logits(hidden.narrow(1, p - 1, c)).to_type(ScalarType.Float32);
        if (temperature != 1.0) logits = logits / temperature;
        return logits.log_softmax(-1).gather(-1, comp.unsqueeze(-1)).squeeze(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Repeats each prompt's image embeddings and grid rows <paramref name="g"/> times, in the row order b·g + j of
    /// <see cref="Generate"/>. The images of row b are those of its image-token runs, in order.
    /// </summary>
    public ImageInputs RepeatForSamples(ImageInputs images, Tensor promptIds, int g)
    {
        var m = Config.Vision.SpatialMergeSize;
        var grid = VisionTower.ReadGrid(images.GridThw, m);
        using var counts = promptIds.eq(Config.ImageTokenId).sum(1).cpu();
        var perRow = counts.data<long>().ToArray();
        var embedChunks = new List<Tensor>();
        var gridRows = new List<long>();
        long e = 0;
        int gi = 0;
        for (int b = 0; b < perRow.Length; b++)
        {
            long tokens = 0;
            var first = gi;
            while (tokens < perRow[b] && gi < grid.Length) { tokens += grid[gi].T * grid[gi].H * grid[gi].W / (m * m); gi++; }
            if (tokens != perRow[b])
                throw new ArgumentException($"prompt row {b} has {perRow[b]} image tokens, which the image grids do not add up to");
            for (int j = 0; j < g; j++)
            {
                embedChunks.Add(images.Embeds.narrow(0, e, tokens));
                for (int k = first; k < gi; k++) gridRows.AddRange([grid[k].T, grid[k].H, grid[k].W]);
            }
            e += tokens;
        }
        if (e != images.Embeds.shape[0] || gi != grid.Length)
            throw new ArgumentException($"the prompts use {e} embedding rows and {gi} grids, but {images.Embeds.shape[0]} rows and {grid.Length} grids were given");
        return new ImageInputs(torch.cat(embedChunks, 0), torch.tensor(gridRows.ToArray(), [gridRows.Count / 3, 3], ScalarType.Int64));
    }
}
