using VisualRft.Data;

namespace VisualRft.Tests.Data;

/// <summary>The prompt and solution strings, written out independently from visual-rft-spec.md §3.2–§3.4 and §5.1.</summary>
public class PromptsTests
{
    [Fact]
    public void Detection_prompt_is_the_evaluation_scripts_text()
    {
        const string expected = """
            Detect all objects belonging to the category 'red star' in the image, and provide the bounding boxes (between 0 and 1000, integer) and confidence (between 0 and 1, with two decimal places).
            If no object belonging to the category 'red star' in the image, return 'No Objects'.
            Output the thinking process in <think> </think> and final answer in <answer> </answer> tags.The output answer format should be as follows:
            <think> ... </think> <answer>[{'Position': [x1, y1, x2, y2], 'Confidence': number}, ...]</answer>
            Please strictly follow the format.
            """;
        Assert.Equal(expected.ReplaceLineEndings("\n"), Prompts.Detection("red star"));
    }

    [Fact]
    public void Classification_prompt_follows_the_aircraft_script_layout()
    {
        const string expected = """
            This is an image containing a shape. Please identify the type of the shape based on the image.
            Output the thinking process in <think> </think> and final answer in <answer> </answer> tags.The output answer format should be as follows:
            <think> ... </think> <answer>species name</answer>
            Please strictly follow the format.
            """;
        Assert.Equal(expected.ReplaceLineEndings("\n"), Prompts.Classification());
        Assert.StartsWith("This is an image containing an aircraft. Please identify the model of the aircraft based on the image.\n", Prompts.Classification("aircraft", "model"));
    }

    [Fact]
    public void Grounding_prompt_is_gen_sft_text_inside_QUESTION_TEMPLATE()
    {
        var expected = "Output the bounding box in the image corresponding to the instruction: Which is the largest red object?"
            + " Output the thinking process in <think> </think> and your grouding box. Following \"<think> thinking process </think>\n<answer>(x1,y1),(x2,y2)</answer>)\" format.";
        Assert.Equal(expected, Prompts.Grounding("Which is the largest red object?"));
    }

    [Fact]
    public void Solutions_use_the_paper_formats()
    {
        Assert.Equal("<answer>[{'Position': [1, 2, 3, 4], 'Confidence': 1}, {'Position': [10, 20, 300, 1000], 'Confidence': 1}]</answer>",
            Prompts.DetectionSolution([new(1, 2, 3, 4), new(10, 20, 300, 1000)]));
        Assert.Equal("<answer>garden phlox</answer>", Prompts.ClassificationSolution("garden phlox"));
        Assert.Equal("<answer> (120,330),(560,900) </answer>", Prompts.GroundingSolution(new(120, 330, 560, 900)));
    }

    [Fact]
    public void Qwen_frame_truncates_like_python_int()
    {
        // int(x / w * 1000): 37/112*1000 = 330.357… → 330; 111/112*1000 = 991.07… → 991; w ≠ h keeps the axes apart.
        Assert.Equal(new Qwen1000Box(330, 0, 991, 1000), new PixelBox(37, 0, 111, 112).ToQwen1000(112, 112));
        Assert.Equal(new Qwen1000Box(500, 250, 1000, 500), new PixelBox(100, 100, 200, 200).ToQwen1000(200, 400));
        Assert.Equal(1, new PixelBox(1, 0, 2, 1).ToQwen1000(1000, 1000).X1);
        Assert.Throws<ArgumentOutOfRangeException>(() => new PixelBox(0, 0, 1, 1).ToQwen1000(0, 10));
    }
}
