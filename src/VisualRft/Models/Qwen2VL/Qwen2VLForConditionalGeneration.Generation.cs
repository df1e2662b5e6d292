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
        using var finalizers = FinalizerGate.Hold();   // the decode loop makes thousands of temporary Scalars
        using var noGrad = torch.no_grad();
        using var outer = NewDisposeScope();
        var (b, p) = (promptIds.shape[0], promptIds.shape[1]);
        var g = numSamples;
        var n = b * g;
        var steps = options.MaxNewTokens;
        var capacity = p + steps;
        var device = Device;

        // Prefill: one pass per prompt, then the cache rows are repeated for the samples.
        UseThreadsFor(b * p);
        var (pos, deltas) = GetRopeIndex(promptIds, promptMask, images?.GridThw);
        var prompt = promptMask.to(device).to_type(ScalarType.Bool);
        var cache = KvCache.Allocate(Config.Text, b, g == 1 ? capacity : p, DType, device);
        var hidden = model.forward(EmbedInputs(promptIds, images), pos.to(device), prompt, cache, 0);
        var logits = Float32(Logits(hidden.narrow(1, p - 1, 1)).squeeze(1));
        if (g > 1)
        {
            var repeated = cache.RepeatInterleave(g, p, capacity);
            cache.Dispose();
            cache = repeated;
        }
        using var _ = cache;
        var start = FirstCompletionPosition(deltas, prompt, g);
        if (g > 1)
        {
            logits = logits.repeat_interleave(g, 0);
            prompt = prompt.repeat_interleave(g, 0);
        }
        // What the decode steps need, made once and narrowed per step: the rotary tables of their positions, and an
        // attention bias that hides the prompt's padding and shows every generated key (step c attends to the p + c + 1
        // cache slots written so far).
        var rope = model.MropeTables((start + torch.arange(steps, device: device)).unsqueeze(0).expand(3, n, steps), DType);
        var hide = torch.cat([prompt, torch.ones([n, steps], ScalarType.Bool, device)], 1).logical_not();
        var bias = torch.zeros([n, 1, 1, capacity], DType, device).masked_fill(hide.view(n, 1, 1, capacity), Qwen2TextModel.MinValue(DType));

        var stops = torch.tensor((options.StopTokenIds ?? []).ToArray(), ScalarType.Int64, device);
        var canStop = stops.numel() > 0;
        var finished = torch.zeros(n, ScalarType.Bool, device);
        var ids = new List<Tensor>();
        var finishedBefore = new List<Tensor>();
        var lps = new List<Tensor>();
        var threads = ThreadPolicy.ForSteps(n, Config.Text.HiddenSize, 2L * Config.Text.IntermediateSize, ElementSize);
        for (int c = 0; c < steps; c++)
        {
            using var step = NewDisposeScope();
            var next = SampleNext(logits, options, generator).masked_fill_(finished, options.PadTokenId);
            ids.Add(next.MoveToOuterDisposeScope());
            if (returnLogProbs)
                lps.Add(TokenLogProbs(logits, next, options.Greedy ? 1.0 : options.Temperature).masked_fill_(finished, 0).MoveToOuterDisposeScope());
            finishedBefore.Add(finished);
            if (canStop)
            {
                finished = finished.logical_or(torch.isin(next, stops)).MoveToOuterDisposeScope();
                // The one host read per token: ending when every row has stopped keeps the draws (and the generator's
                // state afterwards) what they would be token by token.
                if (finished.all().item<bool>()) break;
            }
            if (c == steps - 1) break;

            // Decode one token at cache slot p + c.
            threads.Begin();
            var h = model.forward(model.embed_tokens.forward(next.unsqueeze(1)), rope.Narrow(c, 1), bias.narrow(3, 0, p + c + 1), cache, p + c);
            var newLogits = Float32(Logits(h).squeeze(1)).MoveToOuterDisposeScope();
            threads.End();
            logits.Dispose();
            logits = newLogits;
        }
        return new GenerationOutput(
            torch.stack(ids, 1).MoveToOuterDisposeScope(),
            torch.stack(finishedBefore, 1).logical_not().to_type(ScalarType.Int64).MoveToOuterDisposeScope(),
            returnLogProbs ? torch.stack(lps, 1).MoveToOuterDisposeScope() : null);
    }

    /// <summary>
    /// The M-RoPE position [B·G, 1] of each row's first completion token. The k-th real token of a row (completion tokens
    /// counted) sits at k + delta on all three axes (see <see cref="RopeIndex"/>), so completion token c is at
    /// (unpadded prompt length + delta) + c.
    /// </summary>
    static Tensor FirstCompletionPosition(Tensor ropeDeltas, Tensor promptMask, int g) =>
        (ropeDeltas.to(promptMask.device) + promptMask.sum(1, keepdim: true)).repeat_interleave(g, 0);

    /// <summary>log_softmax(logits / temperature) at the given token ids: the token log-prob GRPO takes (TRL).</summary>
    static Tensor TokenLogProbs(Tensor logits, Tensor ids, double temperature) =>
        (temperature == 1.0 ? logits : logits / temperature).log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1);

    static Tensor Float32(Tensor t) => t.dtype == ScalarType.Float32 ? t : t.to_type(ScalarType.Float32);

    /// <summary>
    /// HF's logits warpers in HF's order (temperature, top-k, top-p), then a multinomial draw; or the argmax. With top-k
    /// the draw is among the k largest logits only: they come out of <c>topk</c> already gathered, top-p sorts k values
    /// instead of the vocabulary, and the draw makes k exponential variates instead of one per vocabulary entry. The
    /// distribution is HF's, except that a tie at the k-th largest logit keeps exactly k tokens (HF keeps every tied one).
    /// </summary>
    internal static Tensor SampleNext(Tensor logits, SamplingOptions o, Generator? generator)
    {
        if (o.Greedy) return logits.argmax(-1);
        if (o.Temperature <= 0) throw new ArgumentOutOfRangeException(nameof(o), o.Temperature, "Temperature must be positive (use Greedy for argmax)");
        var l = logits;
        Tensor? index = null;
        if (o.TopK > 0 && o.TopK < l.shape[^1]) (l, index) = l.topk(o.TopK);   // dividing by T first selects the same k
        if (o.Temperature != 1.0) l = l / o.Temperature;
        if (o.TopP < 1.0)
        {
            // Sort ascending; drop tokens whose cumulative probability is ≤ 1 − top_p, always keeping the most likely.
            var (sorted, order) = l.sort(-1, descending: false);
            var remove = sorted.softmax(-1).cumsum(-1).le(1 - o.TopP);
            remove.narrow(-1, remove.shape[^1] - 1, 1).fill_(false);
            l = l.masked_fill(remove.scatter(-1, order, remove), double.NegativeInfinity);
        }
        var choice = l.softmax(-1).multinomial(1, generator: generator);
        return (index is null ? choice : index.gather(-1, choice)).squeeze(-1);
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
        using var finalizers = FinalizerGate.Hold();
        using var scope = NewDisposeScope();
        var p = promptIds.shape[1];
        var c = completionIds.shape[1];
        UseThreadsFor(promptIds.shape[0] * (p + c));
        var comp = completionIds.to(Device);
        var mask = torch.cat([promptMask.to(Device).to_type(ScalarType.Int64),
            (completionMask ?? torch.ones_like(completionIds)).to(Device).to_type(ScalarType.Int64)], 1);
        // Completion tokens are embedded as text even if a sampled id equals the image token.
        var embeds = torch.cat([EmbedInputs(promptIds, images), model.embed_tokens.forward(comp)], 1);
        var ids = torch.cat([promptIds.to(Device), comp], 1);
        var (pos, _) = GetRopeIndex(ids, mask, images?.GridThw);
        var hidden = model.forward(embeds, pos.to(Device), mask);
        return TokenLogProbs(Logits(hidden.narrow(1, p - 1, c)).to_type(ScalarType.Float32), comp, temperature).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The log-probabilities <see cref="CompletionLogProbs(Tensor, Tensor, Tensor, Tensor?, ImageInputs?, double)"/> gives
    /// for G completions per prompt, with each prompt run once instead of G times: the prompt pass fills a key-value
    /// cache (with gradient when autograd is on), the cache rows are repeated for the prompt's G completions, and the
    /// completions run in one pass over it at the positions <see cref="Generate"/> gives them. The decoder's work on
    /// prompts drops G-fold, and prompts are most of a GRPO sequence (at 2B scale the image alone is hundreds of tokens).
    /// Prompts [B, P] with the images of those B prompts; completions [B·G, C] in the row order b·G + j. Where the
    /// completion mask is 0 the values have no meaning (the full pass gives different ones); GRPO masks them.
    /// </summary>
    public Tensor CompletionLogProbs(Tensor promptIds, Tensor promptMask, ImageInputs? images, int samplesPerPrompt,
        Tensor completionIds, Tensor? completionMask, double temperature = 1.0)
    {
        var (b, p) = (promptIds.shape[0], promptIds.shape[1]);
        var g = samplesPerPrompt;
        if (g < 1) throw new ArgumentOutOfRangeException(nameof(samplesPerPrompt), g, "must be at least 1");
        if (completionIds.dim() != 2 || completionIds.shape[0] != b * g)
            throw new ArgumentException($"completion ids [{string.Join(",", completionIds.shape)}] do not match {b} prompts × {g} samples");
        var (n, c) = (b * g, completionIds.shape[1]);
        if (c == 0) return torch.zeros([n, 0], ScalarType.Float32, Device);
        using var finalizers = FinalizerGate.Hold();
        using var scope = NewDisposeScope();
        // A checkpointed layer recomputes from its input alone, and the cache is written in place: under gradient
        // checkpointing each row runs its prompt again in one full pass, as TRL's trainer always does.
        if (GradientCheckpointing && is_grad_enabled())
            return CompletionLogProbs(promptIds.repeat_interleave(g, 0), promptMask.repeat_interleave(g, 0), completionIds, completionMask,
                images is null ? null : RepeatForSamples(images, promptIds, g), temperature).MoveToOuterDisposeScope();
        var device = Device;
        UseThreadsFor(b * p + n * c);
        var (pos, deltas) = GetRopeIndex(promptIds, promptMask, images?.GridThw);
        var prompt = promptMask.to(device).to_type(ScalarType.Bool);
        var cache = KvCache.Allocate(Config.Text, b, p, DType, device);
        var last = model.forward(EmbedInputs(promptIds, images), pos.to(device), prompt, cache, 0).narrow(1, p - 1, 1);
        var shared = cache.RepeatInterleave(g, p, p + c);
        var comp = completionIds.to(device);
        var start = FirstCompletionPosition(deltas, prompt, g);
        var keys = torch.cat([prompt.repeat_interleave(g, 0),
            (completionMask ?? torch.ones_like(completionIds)).to(device).to_type(ScalarType.Bool)], 1);
        var hidden = model.forward(model.embed_tokens.forward(comp), (start + torch.arange(c, device: device)).unsqueeze(0).expand(3, n, c),
            keys, shared, p);
        // Token t is predicted at position t − 1: the prompt's last position for the first token.
        var logits = Logits(torch.cat([last.repeat_interleave(g, 0), hidden.narrow(1, 0, c - 1)], 1)).to_type(ScalarType.Float32);
        return TokenLogProbs(logits, comp, temperature).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Repeats each prompt's image embeddings and grid rows <paramref name="g"/> times, in the row order b·g + j of
    /// <see cref="Generate"/>. The images of row b are those of its image-token runs, in order.
    /// </summary>
    public ImageInputs RepeatForSamples(ImageInputs images, Tensor promptIds, int g)
    {
        using var finalizers = FinalizerGate.Hold();
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
