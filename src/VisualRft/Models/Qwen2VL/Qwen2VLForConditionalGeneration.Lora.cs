namespace VisualRft.Models.Qwen2VL;

public sealed partial class Qwen2VLForConditionalGeneration
{
    /// <summary>LoRA adapters on this model's layers (<see cref="AddLora"/>, <see cref="LoadLora"/>); null without.</summary>
    public LoraAdapters? Adapters { get; private set; }

    /// <summary>Adds fresh LoRA adapters (the model then computes exactly as before) and freezes the base weights.</summary>
    public LoraAdapters AddLora(LoraConfig config, long seed = 0)
    {
        if (Adapters is not null) throw new InvalidOperationException("the model already has LoRA adapters; merge them (MergeLora) or use a fresh model");
        return Adapters = LoraAdapters.Attach(this, config, seed);
    }

    /// <summary>Reads a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) onto this model.</summary>
    public LoraAdapters LoadLora(string folder)
    {
        if (Adapters is not null) throw new InvalidOperationException("the model already has LoRA adapters; merge them (MergeLora) or use a fresh model");
        return Adapters = LoraAdapters.Load(this, folder);
    }

    /// <summary>Adds the adapters' updates into the base weights and removes them (<see cref="LoraAdapters.Merge"/>).</summary>
    public void MergeLora()
    {
        var adapters = Adapters ?? throw new InvalidOperationException("the model has no LoRA adapters to merge");
        adapters.Merge();
        Adapters = null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) Adapters?.Dispose();
        base.Dispose(disposing);
    }
}
