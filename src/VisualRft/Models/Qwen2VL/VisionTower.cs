using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VisualRft.Models.Qwen2VL;

/// <summary>
/// The vision tower (<c>visual.*</c>): patch embedding, 2D rotary embedding, attention within each image frame (and,
/// for Qwen2.5-VL, within 2×2-merged windows except in <c>fullatt_block_indexes</c>), then the 2×2 patch merger
/// (spec §3, §7). Input rows are patches in the processor order of spec §4.4; output rows are merged tokens, one per
/// <c>&lt;|image_pad|&gt;</c>.
/// </summary>
public sealed class VisionTower : nn.Module
{
    readonly Qwen2VLVisionConfig cfg;
    readonly bool qwen25;
    public readonly PatchEmbed patch_embed;
    public readonly ModuleList<VisionBlock> blocks;
    public readonly PatchMerger merger;

    public VisionTower(Qwen2VLVisionConfig cfg, bool qwen25, Device? device = null, ScalarType? dtype = null) : base("visual")
    {
        this.cfg = cfg;
        this.qwen25 = qwen25;
        patch_embed = new PatchEmbed(cfg, device, dtype);
        blocks = new ModuleList<VisionBlock>(Enumerable.Range(0, cfg.Depth).Select(_ => new VisionBlock(cfg, qwen25, device, dtype)).ToArray());
        merger = new PatchMerger(cfg, qwen25, device, dtype);
        RegisterComponents();
    }

    /// <summary>pixel_values [P, 1176] and image_grid_thw [n, 3] → image embeddings [P/merge², out_hidden]. With
    /// <paramref name="recompute"/> each block keeps only its input and is recomputed in the backward (<see cref="GradientCheckpoint"/>;
    /// <see cref="Qwen2VLForConditionalGeneration.EncodeImages"/> asks for it when the model checkpoints and the tower trains).</summary>
    public Tensor forward(Tensor pixelValues, Tensor gridThw, bool recompute = false)
    {
        var grid = ReadGrid(gridThw, cfg.SpatialMergeSize);
        var patches = grid.Sum(g => g.T * g.H * g.W);
        if (pixelValues.dim() != 2 || pixelValues.shape[0] != patches || pixelValues.shape[1] != cfg.PatchDim)
            throw new ArgumentException($"pixel_values has shape [{string.Join(",", pixelValues.shape)}] but image_grid_thw needs [{patches},{cfg.PatchDim}]");
        using var scope = NewDisposeScope();
        var unit = cfg.SpatialMergeSize * cfg.SpatialMergeSize;
        var x = patch_embed.forward(pixelValues);
        var rot = RotaryPositions(grid).to(x.device);                           // [P, head_dim/2] float32
        int[]? windowIndex = null;
        int[] cuWindow = [];
        if (qwen25)
        {
            // Reorder whole 2×2 groups so that each window is contiguous (spec §7); undone after the merger.
            (windowIndex, cuWindow) = WindowIndex(grid);
            using var wi = torch.tensor(windowIndex, dtype: ScalarType.Int64, device: x.device);
            x = x.view(patches / unit, unit, -1).index_select(0, wi).view(patches, -1);
            rot = rot.view(patches / unit, unit, -1).index_select(0, wi).view(patches, -1);
        }
        var emb = torch.cat([rot, rot], -1);
        var (cos, sin) = (emb.cos(), emb.sin());
        var cuFrames = FrameBoundaries(grid);
        var full = cfg.FullAttBlockIndexes ?? [];
        for (int i = 0; i < blocks.Count; i++)
        {
            var (block, cu) = (blocks[i], qwen25 && !full.Contains(i) ? cuWindow : cuFrames);
            x = recompute ? GradientCheckpoint.Run((h, e) => block.forward(h, cu, e[0], e[1]), x, cos, sin) : block.forward(x, cu, cos, sin);
        }
        x = merger.forward(x);
        if (windowIndex != null)
        {
            using var wi = torch.tensor(windowIndex, dtype: ScalarType.Int64, device: x.device);
            x = x.index_select(0, wi.argsort());
        }
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Reads image_grid_thw, checking that h and w are multiples of the merge size.</summary>
    internal static (long T, long H, long W)[] ReadGrid(Tensor gridThw, int merge)
    {
        if (gridThw.dim() != 2 || gridThw.shape[1] != 3)
            throw new ArgumentException($"image_grid_thw must have shape [n, 3], got [{string.Join(",", gridThw.shape)}]");
        using var cpu = gridThw.to_type(ScalarType.Int64).cpu();
        var v = cpu.data<long>().ToArray();
        var grid = new (long, long, long)[v.Length / 3];
        for (int i = 0; i < grid.Length; i++)
        {
            grid[i] = (v[3 * i], v[3 * i + 1], v[3 * i + 2]);
            if (v[3 * i] < 1 || v[3 * i + 1] < merge || v[3 * i + 2] < merge || v[3 * i + 1] % merge != 0 || v[3 * i + 2] % merge != 0)
                throw new ArgumentException($"image_grid_thw row {i} = [{v[3 * i]},{v[3 * i + 1]},{v[3 * i + 2]}] is not a valid grid for merge size {merge}");
        }
        return grid;
    }

    /// <summary>
    /// rot_pos_emb: per patch (row, col) in the merged-block order of spec §4.4, looked up in a table of
    /// position × inv_freq; the first half of the result rotates by row, the second by column (spec §3).
    /// </summary>
    Tensor RotaryPositions((long T, long H, long W)[] grid)
    {
        var m = cfg.SpatialMergeSize;
        var pos = new List<long>();
        foreach (var (t, h, w) in grid)
            for (long f = 0; f < t; f++)
                for (long hb = 0; hb < h / m; hb++)
                    for (long wb = 0; wb < w / m; wb++)
                        for (long mh = 0; mh < m; mh++)
                            for (long mw = 0; mw < m; mw++)
                            {
                                pos.Add(hb * m + mh);
                                pos.Add(wb * m + mw);
                            }
        var dim = cfg.HeadDim / 2;
        var invFreq = Rope.InverseFrequencies(cfg.RopeTheta, dim);
        var maxSide = grid.Max(g => Math.Max(g.H, g.W));
        var table = torch.outer(torch.arange(maxSide, dtype: ScalarType.Float32), invFreq);
        var ids = torch.tensor(pos.ToArray(), dtype: ScalarType.Int64).view(-1, 2);
        return table.index_select(0, ids.flatten()).view(ids.shape[0], -1);
    }

    /// <summary>cu_seqlens: one attention segment per frame of each image.</summary>
    static int[] FrameBoundaries((long T, long H, long W)[] grid)
    {
        var cu = new List<int> { 0 };
        foreach (var (t, h, w) in grid)
            for (long f = 0; f < t; f++) cu.Add(cu[^1] + (int)(h * w));
        return cu.ToArray();
    }

    /// <summary>
    /// get_window_index of Qwen2.5-VL: per frame, the merged-token grid is padded to whole windows of
    /// window_size/merge/patch tokens a side (padding by a full window when already divisible, as HF does), windows
    /// are taken row-major, and the merged-token indices are listed window by window. Returns that order (global over
    /// images) and the window boundaries in patches, with empty windows dropped (HF's unique_consecutive).
    /// </summary>
    (int[] Index, int[] CuSeqlens) WindowIndex((long T, long H, long W)[] grid)
    {
        var m = cfg.SpatialMergeSize;
        var win = cfg.WindowSize / m / cfg.PatchSize;
        var index = new List<int>();
        var cu = new List<int> { 0 };
        var offset = 0;
        foreach (var (t, h, w) in grid)
        {
            int gh = (int)(h / m), gw = (int)(w / m);
            int nh = (gh + win - gh % win) / win, nw = (gw + win - gw % win) / win;
            for (int f = 0; f < t; f++)
                for (int wy = 0; wy < nh; wy++)
                    for (int wx = 0; wx < nw; wx++)
                    {
                        var count = 0;
                        for (int y = wy * win; y < Math.Min((wy + 1) * win, gh); y++)
                            for (int x = wx * win; x < Math.Min((wx + 1) * win, gw); x++)
                            {
                                index.Add(offset + (f * gh + y) * gw + x);
                                count++;
                            }
                        if (count > 0) cu.Add(cu[^1] + count * m * m);
                    }
            offset += (int)t * gh * gw;
        }
        return (index.ToArray(), cu.ToArray());
    }
}

/// <summary>Conv3d with kernel = stride = (2, 14, 14), applied as the equivalent matmul on flattened patches (spec §3).</summary>
public sealed class PatchEmbed : nn.Module
{
    public readonly Conv3d proj;

    public PatchEmbed(Qwen2VLVisionConfig cfg, Device? device, ScalarType? dtype) : base(nameof(PatchEmbed))
    {
        proj = nn.Conv3d(cfg.InChannels, cfg.Width, (cfg.TemporalPatchSize, cfg.PatchSize, cfg.PatchSize),
            stride: (cfg.TemporalPatchSize, cfg.PatchSize, cfg.PatchSize), bias: false, device: device, dtype: dtype);
        RegisterComponents();
    }

    public Tensor forward(Tensor pixelValues)
    {
        var w = proj.weight!;
        using var flat = w.view(w.shape[0], -1);
        using var x = pixelValues.to(w.dtype, w.device);
        return nn.functional.linear(x, flat);
    }
}

/// <summary>A pre-norm vision block: LayerNorm + GELU MLP for Qwen2-VL, RMSNorm + SwiGLU for Qwen2.5-VL.</summary>
public sealed class VisionBlock : nn.Module
{
    public readonly nn.Module<Tensor, Tensor> norm1, norm2, mlp;
    public readonly VisionAttention attn;

    public VisionBlock(Qwen2VLVisionConfig cfg, bool qwen25, Device? device, ScalarType? dtype) : base(nameof(VisionBlock))
    {
        norm1 = Norm(cfg.Width, qwen25, device, dtype);
        norm2 = Norm(cfg.Width, qwen25, device, dtype);
        attn = new VisionAttention(cfg, device, dtype);
        mlp = qwen25
            ? new GatedMlp(cfg.Width, cfg.IntermediateSize, bias: true, cfg.HiddenAct, device, dtype)
            : new VisionMlp(cfg.Width, cfg.IntermediateSize, cfg.HiddenAct, device, dtype);
        RegisterComponents();
    }

    internal static nn.Module<Tensor, Tensor> Norm(long dim, bool rms, Device? device, ScalarType? dtype) =>
        rms ? new RmsNorm(dim, 1e-6, device, dtype) : nn.LayerNorm(dim, 1e-6, device: device, dtype: dtype);

    public Tensor forward(Tensor x, int[] cuSeqlens, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        x = x + attn.forward(norm1.forward(x), cuSeqlens, cos, sin);
        x = x + mlp.forward(norm2.forward(x));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>Fused-QKV attention with 2D rotary embedding, full attention inside each cu_seqlens segment.</summary>
public sealed class VisionAttention : nn.Module
{
    readonly int heads;
    public readonly Linear qkv, proj;

    public VisionAttention(Qwen2VLVisionConfig cfg, Device? device, ScalarType? dtype) : base(nameof(VisionAttention))
    {
        heads = cfg.NumHeads;
        qkv = Layer.Linear(cfg.Width, 3L * cfg.Width, bias: true, device, dtype);
        proj = Layer.Linear(cfg.Width, cfg.Width, bias: true, device, dtype);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, int[] cu, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var p = x.shape[0];
        var parts = qkv.Project(x).view(p, 3, heads, -1).permute(1, 0, 2, 3);
        var q = Rotate(parts[0], cos, sin);
        var k = Rotate(parts[1], cos, sin);
        var v = parts[2];
        var lengths = Enumerable.Range(0, cu.Length - 1).Select(i => cu[i + 1] - cu[i]).ToArray();
        Tensor o;
        if (lengths.All(l => l == lengths[0]))
        {
            // Equal segments (the usual case: same-size images, or one image) run as one batched call.
            var n = lengths.Length;
            Tensor Seg(Tensor t) => t.reshape(n, lengths[0], heads, -1).transpose(1, 2);
            o = nn.functional.scaled_dot_product_attention(Seg(q), Seg(k), Seg(v)).transpose(1, 2).reshape(p, -1);
        }
        else
        {
            var outs = new List<Tensor>();
            for (int i = 0; i < lengths.Length; i++)
            {
                Tensor Seg(Tensor t) => t.narrow(0, cu[i], lengths[i]).transpose(0, 1).unsqueeze(0);
                outs.Add(nn.functional.scaled_dot_product_attention(Seg(q), Seg(k), Seg(v)).squeeze(0).transpose(0, 1));
            }
            o = torch.cat(outs, 0).reshape(p, -1);
        }
        return proj.Project(o).MoveToOuterDisposeScope();
    }

    /// <summary>Vision RoPE runs in float32 and casts back (spec §3 dtype notes).</summary>
    static Tensor Rotate(Tensor t, Tensor cos, Tensor sin)
    {
        var f = t.to_type(ScalarType.Float32);
        var c = cos.unsqueeze(1);
        var s = sin.unsqueeze(1);
        return (f * c + Rope.RotateHalf(f) * s).to_type(t.dtype);
    }
}

/// <summary>Qwen2-VL vision MLP: fc2(act(fc1(x))).</summary>
public sealed class VisionMlp : nn.Module<Tensor, Tensor>
{
    readonly string act;
    public readonly Linear fc1, fc2;

    public VisionMlp(long dim, long hidden, string act, Device? device, ScalarType? dtype) : base(nameof(VisionMlp))
    {
        this.act = act;
        fc1 = Layer.Linear(dim, hidden, bias: true, device, dtype);
        fc2 = Layer.Linear(hidden, dim, bias: true, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var h = fc1.Project(x);
        using var a = Activations.Apply(act, h);
        return fc2.Project(a);
    }
}

/// <summary>
/// The patch merger: norm, group each 2×2 block of patches (4 consecutive rows) into one row, then
/// Linear → exact GELU → Linear to the language-model width (spec §3).
/// </summary>
public sealed class PatchMerger : nn.Module<Tensor, Tensor>
{
    readonly long groupWidth;
    public readonly nn.Module<Tensor, Tensor> ln_q;
    public readonly Sequential mlp;

    public PatchMerger(Qwen2VLVisionConfig cfg, bool qwen25, Device? device, ScalarType? dtype) : base(nameof(PatchMerger))
    {
        groupWidth = (long)cfg.Width * cfg.SpatialMergeSize * cfg.SpatialMergeSize;
        ln_q = VisionBlock.Norm(cfg.Width, qwen25, device, dtype);
        mlp = nn.Sequential(
            Layer.Linear(groupWidth, groupWidth, bias: true, device, dtype),
            nn.GELU(),
            Layer.Linear(groupWidth, cfg.OutHiddenSize, bias: true, device, dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var n = ln_q.forward(x);
        using var g = n.view(-1, groupWidth);
        return mlp.forward(g);
    }
}
