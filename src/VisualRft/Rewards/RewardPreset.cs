namespace VisualRft.Rewards;

/// <summary>Which behaviour a reward reproduces.</summary>
public enum RewardPreset
{
    /// <summary>
    /// The official Visual-RFT code ([R] main, visual-rft-spec.md §4) exactly, quirks included, except the math_verify
    /// pre-check (§4.2), which is dropped. Each quirk is listed on the reward class that has it.
    /// </summary>
    VisualRft,
    /// <summary>
    /// Same scores as <see cref="VisualRft"/> on well-formed answers; NaN-safe, range-checked, no substring or
    /// corner-order hacks, multi-line answers accepted, whitespace outside the tags ignored, empty answers score 0.
    /// </summary>
    Strict,
}

