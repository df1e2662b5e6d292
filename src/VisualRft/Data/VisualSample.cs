using VisualRft.Imaging;

namespace VisualRft.Data;

public enum DatasetSplit { Train, Test }

/// <summary>Whether a sample's category belongs to the base set (seen in pre-training) or the novel set.</summary>
public enum CategoryGroup { Base, Novel }

/// <summary>One shape drawn in a scene: its category name (e.g. "red circle") and its tight pixel box.</summary>
public sealed record SceneObject(string Category, PixelBox Box);

/// <summary>
/// One training or evaluation row, as the paper's datasets hold them (visual-rft-spec.md §5.1: image, problem, solution),
/// plus what the views, rewards and metrics need: the task, the queried category or class, the ground-truth boxes in pixels
/// and in the 0–1000 frame, and every object drawn in the image.
/// </summary>
/// <param name="Id">Stable identifier "{dataset}/{split}/{category}/{index}".</param>
/// <param name="Task">Which reward and answer format apply.</param>
/// <param name="Image">The RGB image (synthetic sets: square, a multiple of 28 pixels). Plain pixels: a sample stays valid
/// after its dataset is gone, so a notebook cell can keep it.</param>
/// <param name="Problem">The prompt text, exactly the paper's template (§3.2–§3.4).</param>
/// <param name="Solution">The ground-truth answer in the paper's format (§5.1).</param>
/// <param name="Category">Detection: the queried category. Classification: the class name. Grounding: the target's category.</param>
/// <param name="Boxes">Ground-truth boxes in pixels: all objects of the category (detection), the one target (grounding), none (classification).</param>
/// <param name="Boxes1000">The same boxes in Qwen2-VL's 0–1000 frame, exactly the numbers written in <paramref name="Solution"/>.</param>
/// <param name="Objects">Every object drawn, target or distractor (detection, grounding) or the single object (classification).</param>
/// <param name="Split">Train or test.</param>
/// <param name="Group">Base or novel, by the manifest's category lists (grounding: the target's category).</param>
/// <param name="Metadata">Generator details, e.g. "instruction" and "relation" for grounding, "distractors" for detection.</param>
public sealed record VisualSample(
    string Id,
    VisualTask Task,
    RgbImage Image,
    string Problem,
    string Solution,
    string Category,
    IReadOnlyList<PixelBox> Boxes,
    IReadOnlyList<Qwen1000Box> Boxes1000,
    IReadOnlyList<SceneObject> Objects,
    DatasetSplit Split,
    CategoryGroup Group,
    IReadOnlyDictionary<string, string> Metadata)
{
    public int Width => Image.Width;
    public int Height => Image.Height;
}

/// <summary>Metadata keys that change how a sample is used, not only how it is described.</summary>
public static class SampleMetadata
{
    /// <summary>Key whose value <see cref="ThinkOmitted"/> makes the SFT target the answer alone (SolutionStyle.WithoutThinkShare).</summary>
    public const string Think = "think";
    public const string ThinkOmitted = "omitted";
}
