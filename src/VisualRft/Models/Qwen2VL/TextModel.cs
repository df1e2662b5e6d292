using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VisualRft.Models.Qwen2VL;

/// <summary>
/// The Qwen2 decoder (<c>model.*</c>): token embedding, pre-norm layers with GQA attention and M-RoPE, final RMSNorm
/// (spec §5). It consumes merged input embeddings so that image features can be injected by the caller.
/// </summary>
public sealed class Qwen2TextModel : nn.Module
{
    readonly Qwen2VLTextConfig cfg;
    public readonly TokenEmbedding embed_tokens;
    public readonly ModuleList<Qwen2DecoderLayer> layers;
    public readonly RmsNorm norm;

    /// <summary>Recompute each layer's activations in the backward (<see cref="GradientCheckpoint"/>) when a forward records
    /// gradients; set through <see cref="Qwen2VLForConditionalGeneration.GradientCheckpointing"/>.</summary>
    internal bool GradientCheckpointing { get; set; }

    public Qwen2TextModel(Qwen2VLTextConfig cfg, Device? device = null, ScalarType? dtype = null) : base("model")
    {
        this.cfg = cfg;
        embed_tokens = new TokenEmbedding(cfg.VocabSize, cfg.HiddenSize, device, dtype);
        layers = new ModuleList<Qwen2DecoderLayer>(Enumerable.Range(0, cfg.NumHiddenLayers).Select(_ => new Qwen2DecoderLayer(cfg, device, dtype)).ToArray());
        norm = new RmsNorm(cfg.HiddenSize, cfg.RmsNormEps, device, dtype);
        RegisterComponents();
    }

    /// <summary>
    /// inputs_embeds [N,S,H], position_ids [3,N,S], key mask [N,T] (true = real token; T = offset + S) → normed hidden
    /// states [N,S,H]. With a cache, keys/values of these S tokens are written at [offset, offset+S) and attention
    /// spans [0, offset+S).
    /// </summary>
    public Tensor forward(Tensor inputsEmbeds, Tensor positionIds, Tensor keyMask, KvCache? cache = null, long offset = 0)
    {
        using var scope = NewDisposeScope();
        var (n, s) = (inputsEmbeds.shape[0], inputsEmbeds.shape[1]);
        if (keyMask.shape[0] != n || keyMask.shape[1] != offset + s)
            throw new ArgumentException($"attention mask has shape [{string.Join(",", keyMask.shape)}], expected [{n},{offset + s}]");
        var rope = MropeTables(positionIds.to(inputsEmbeds.device), inputsEmbeds.dtype);
        var bias = AttentionBias(keyMask.to(inputsEmbeds.device), offset, s, inputsEmbeds.dtype, cfg.NumAttentionHeads / cfg.NumKeyValueHeads);
        return forward(inputsEmbeds, rope, bias, cache, offset).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The layers and the final norm with the rotary tables [N,S,1,D] and the additive attention bias (broadcastable to
    /// [N,1,g·S,T]) already made: a decode step passes slices of tables made once per rollout.
    /// </summary>
    internal Tensor forward(Tensor inputsEmbeds, Rotary rope, Tensor bias, KvCache? cache, long offset)
    {
        using var scope = NewDisposeScope();
        var h = inputsEmbeds;
        var recompute = GradientCheckpointing && cache is null && is_grad_enabled();
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            h = recompute ? GradientCheckpoint.Run((x, e) => layer.forward(x, new Rotary(e[0], e[1]), e[2], null, null, offset), h, rope.Cos, rope.SignedSin, bias)
                : layer.forward(h, rope, bias, cache?.Keys[i], cache?.Values[i], offset);
        }
        return norm.forward(h).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// M-RoPE (spec §5.3): per axis T/H/W, cos/sin of position × inv_freq in float32, then frequency band i of
    /// mrope_section×2 takes its values from axis i mod 3; cast to the model dtype as HF does. position_ids [3,N,S].
    /// </summary>
    internal Rotary MropeTables(Tensor positionIds, ScalarType dtype)
    {
        // Recomputed per call rather than held in a field: TorchSharp would register a tensor field as a buffer.
        var invFreq = Rope.InverseFrequencies(cfg.RopeTheta, cfg.HeadDim).to(positionIds.device);
        var freqs = positionIds.to_type(ScalarType.Float32).unsqueeze(-1) * invFreq;   // [3,N,S,D/2]
        var emb = torch.cat([freqs, freqs], -1);
        var sections = cfg.MropeSection.Concat(cfg.MropeSection).Select(x => (long)x).ToArray();
        Tensor Pick(Tensor t)
        {
            var chunks = t.split(sections, -1);
            return torch.cat(chunks.Select((c, i) => c[i % 3]).ToArray(), -1).to_type(dtype);
        }
        return Rotary.FromCosSin(Pick(emb.cos()), Pick(emb.sin()));
    }

    /// <summary>
    /// Additive mask [N,1,g·S,T]: causal and key padding, with the dtype's finite minimum instead of −inf so that
    /// fully masked (left-pad) query rows stay finite, as in HF (spec §5.2). Rows are tiled g times for the folded
    /// query groups of <see cref="Qwen2Attention"/>.
    /// </summary>
    internal static Tensor AttentionBias(Tensor keyMask, long offset, long s, ScalarType dtype, int groups)
    {
        var n = keyMask.shape[0];
        var t = keyMask.shape[1];
        var device = keyMask.device;
        var qpos = torch.arange(offset, offset + s, device: device).view(s, 1);
        var kpos = torch.arange(t, device: device).view(1, t);
        var allowed = kpos.le(qpos).unsqueeze(0).logical_and(keyMask.to_type(ScalarType.Bool).unsqueeze(1));   // [N,S,T]
        var bias = torch.zeros([n, s, t], dtype: dtype, device: device).masked_fill(allowed.logical_not(), MinValue(dtype));
        return bias.unsqueeze(1).unsqueeze(1).expand(n, 1, groups, s, t).reshape(n, 1, groups * s, t);
    }

    /// <summary>torch.finfo(dtype).min.</summary>
    internal static double MinValue(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => float.MinValue,
        ScalarType.Float64 => double.MinValue,
        ScalarType.Float16 => -65504.0,
        ScalarType.BFloat16 => -3.3895313892515355e38,
        _ => throw new NotSupportedException($"dtype {dtype} is not a floating type"),
    };
}

/// <summary>A pre-norm decoder layer: x + attn(norm(x)), then h + mlp(norm(h)).</summary>
public sealed class Qwen2DecoderLayer : nn.Module
{
    public readonly Qwen2Attention self_attn;
    public readonly GatedMlp mlp;
    public readonly RmsNorm input_layernorm, post_attention_layernorm;

    public Qwen2DecoderLayer(Qwen2VLTextConfig cfg, Device? device, ScalarType? dtype) : base(nameof(Qwen2DecoderLayer))
    {
        self_attn = new Qwen2Attention(cfg, device, dtype);
        mlp = new GatedMlp(cfg.HiddenSize, cfg.IntermediateSize, bias: false, "silu", device, dtype);
        input_layernorm = new RmsNorm(cfg.HiddenSize, cfg.RmsNormEps, device, dtype);
        post_attention_layernorm = new RmsNorm(cfg.HiddenSize, cfg.RmsNormEps, device, dtype);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Rotary rope, Tensor bias, Tensor? cacheK, Tensor? cacheV, long offset)
    {
        using var scope = NewDisposeScope();
        var h = x + self_attn.forward(input_layernorm.forward(x), rope, bias, cacheK, cacheV, offset);
        return (h + mlp.forward(post_attention_layernorm.forward(h))).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// GQA attention with bias on q/k/v (none on o) and M-RoPE; q/k/v are one <see cref="LinearStack"/>. Instead of
/// repeating each key-value head g times (repeat_kv), the g query heads that share it are folded into the query-length
/// axis: the same products, no copies of K/V, which matters for cached decoding.
/// </summary>
public sealed class Qwen2Attention : nn.Module
{
    readonly int heads, kvHeads, headDim;
    readonly LinearStack qkv;
    public readonly Linear q_proj, k_proj, v_proj, o_proj;

    public Qwen2Attention(Qwen2VLTextConfig cfg, Device? device, ScalarType? dtype) : base(nameof(Qwen2Attention))
    {
        (heads, kvHeads, headDim) = (cfg.NumAttentionHeads, cfg.NumKeyValueHeads, cfg.HeadDim);
        long q = (long)heads * headDim, kv = (long)kvHeads * headDim;
        qkv = new LinearStack(cfg.HiddenSize, [q, kv, kv], hasBias: true, device, dtype);
        (q_proj, k_proj, v_proj) = (qkv.Parts[0], qkv.Parts[1], qkv.Parts[2]);
        o_proj = Layer.Linear(q, cfg.HiddenSize, bias: false, device, dtype);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Rotary rope, Tensor bias, Tensor? cacheK, Tensor? cacheV, long offset)
    {
        using var scope = NewDisposeScope();
        var (n, s) = (x.shape[0], x.shape[1]);
        var all = qkv.forward(x).view(n, s, heads + 2 * kvHeads, headDim);
        var qk = rope.Apply(all.narrow(2, 0, heads + kvHeads));   // q and k heads rotate in one pass
        var q = qk.narrow(2, 0, heads).transpose(1, 2);           // [n, heads, s, d]
        var k = qk.narrow(2, heads, kvHeads).transpose(1, 2);     // [n, kv, s, d]
        var v = all.narrow(2, heads + kvHeads, kvHeads).transpose(1, 2);
        if (cacheK is not null && cacheV is not null)
        {
            cacheK.narrow(2, offset, s).copy_(k);
            cacheV.narrow(2, offset, s).copy_(v);
            k = cacheK.narrow(2, 0, offset + s);
            v = cacheV.narrow(2, 0, offset + s);
        }
        var g = heads / kvHeads;
        var qf = q.reshape(n, kvHeads, g * s, headDim);
        var o = nn.functional.scaled_dot_product_attention(qf, k, v, bias);
        o = s == 1 ? o.reshape(n, 1, heads * headDim)   // [n, kv, g, d] is already in head order
            : o.view(n, heads, s, headDim).transpose(1, 2).reshape(n, s, heads * headDim);
        return o_proj.Project(o).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) qkv.Dispose();
        base.Dispose(disposing);
    }
}
