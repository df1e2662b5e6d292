using System.Globalization;
using System.Text;

namespace VisualRft.Data;

/// <summary>
/// The paper's prompt and solution strings, verbatim (visual-rft-spec.md §3.2–§3.4, §5.1). The model sees
/// <c>problem</c> after the image in a single user turn (§3.1); nothing else is added here.
/// </summary>
public static class Prompts
{
    /// <summary>Prompt template ids accepted in manifests (key <c>promptTemplate</c>).</summary>
    public const string DetectionTemplateId = "visual-rft-detection";
    public const string ClassificationTemplateId = "visual-rft-classification";
    public const string GroundingTemplateId = "lisa-grounding";

    /// <summary>§3.2, from the COCO/LVIS evaluation scripts. Note: no space between "tags." and "The output".</summary>
    public static string Detection(string category) =>
        $"Detect all objects belonging to the category '{category}' in the image, and provide the bounding boxes (between 0 and 1000, integer) and confidence (between 0 and 1, with two decimal places).\n" +
        $"If no object belonging to the category '{category}' in the image, return 'No Objects'.\n" +
        "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags.The output answer format should be as follows:\n" +
        "<think> ... </think> <answer>[{'Position': [x1, y1, x2, y2], 'Confidence': number}, ...]</answer>\n" +
        "Please strictly follow the format.";

    /// <summary>
    /// §3.3 in the evaluation script's layout ("This is an image containing an aircraft. Please identify the model of the
    /// aircraft based on the image.\n" + the common tail); the answer placeholder stays "species name" as in the original.
    /// The synthetic classes are shapes, so <c>{a/an} {thing}</c> = "a shape" and <c>{attribute}</c> = "type".
    /// </summary>
    public static string Classification(string thing = "shape", string attribute = "type") =>
        $"This is an image containing {Article(thing)} {thing}. Please identify the {attribute} of the {thing} based on the image.\n" +
        "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags.The output answer format should be as follows:\n" +
        "<think> ... </think> <answer>species name</answer>\n" +
        "Please strictly follow the format.";

    /// <summary>§3.4 <c>QUESTION_TEMPLATE</c> of <c>grpo_lisa.py</c>, typos ("grouding", the stray ")") included.</summary>
    public const string LisaQuestionTemplate =
        "{Question} Output the thinking process in <think> </think> and your grouding box. Following \"<think> thinking process </think>\n<answer>(x1,y1),(x2,y2)</answer>)\" format.";

    /// <summary>§3.4 training prompt: the user text of <c>gen_sft.py</c> wrapped by <see cref="LisaQuestionTemplate"/>.</summary>
    public static string Grounding(string instruction) =>
        LisaQuestionTemplate.Replace("{Question}", "Output the bounding box in the image corresponding to the instruction: " + instruction);

    /// <summary>
    /// §5.1 detection solution: every box of the category, ground-truth confidence 1 (issue #115) unless
    /// <paramref name="confidences"/> gives each box its own (two decimals, as the prompt asks).
    /// </summary>
    public static string DetectionSolution(IEnumerable<Qwen1000Box> boxes, IReadOnlyList<double>? confidences = null)
    {
        var sb = new StringBuilder("<answer>[");
        var i = 0;
        foreach (var b in boxes)
        {
            if (i > 0) sb.Append(", ");
            var c = confidences is null || confidences[i] >= 1 ? "1" : confidences[i].ToString("0.00", CultureInfo.InvariantCulture);
            sb.Append(CultureInfo.InvariantCulture, $"{{'Position': [{b.X1}, {b.Y1}, {b.X2}, {b.Y2}], 'Confidence': {c}}}");
            i++;
        }
        return sb.Append("]</answer>").ToString();
    }

    /// <summary>§5.1 classification solution, e.g. <c>&lt;answer&gt;garden phlox&lt;/answer&gt;</c>.</summary>
    public static string ClassificationSolution(string className) => $"<answer>{className}</answer>";

    /// <summary>§3.4 LISA solution: <c>"&lt;answer&gt; " + "(x1,y1),(x2,y2)" + " &lt;/answer&gt;"</c>.</summary>
    public static string GroundingSolution(Qwen1000Box b) =>
        string.Create(CultureInfo.InvariantCulture, $"<answer> ({b.X1},{b.Y1}),({b.X2},{b.Y2}) </answer>");

    static string Article(string word) => "aeiouAEIOU".Contains(word[0]) ? "an" : "a";
}
