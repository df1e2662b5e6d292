using VisualRft.Rewards;

namespace VisualRft.Tests.Rewards;

// Inside VisualRft.* the name Rewards binds to the namespace first; the alias picks the factory class.
using Rewards = VisualRft.Rewards.Rewards;

/// <summary>visual-rft-spec.md §4.8 (classification) and §4.9 (LISA grounding) under the visual-rft preset.</summary>
public class ClassificationAndGroundingTableTests
{
    static string Wrap(string answer) => $"<think>Looking closely.</think><answer>{answer}</answer>";

    public static TheoryData<string, string, string, double> ClassRows => new()
    {
        { "exact", Wrap("garden phlox"), "<answer>garden phlox</answer>", 1 },
        { "case/space/underscore variant", Wrap("Garden_Phlox"), "<answer>garden phlox</answer>", 1 },
        { "brand only", Wrap("BMW"), "<answer>2012 BMW 1 Series Convertible</answer>", 1 },
        { "several classes", Wrap("rose or lotus or daisy"), "<answer>lotus</answer>", 1 },
        { "empty answer", Wrap(""), "<answer>lotus</answer>", 1 },
        { "single letter", Wrap("A"), "<answer>A320</answer>", 1 },
        { "hyphen kept", Wrap("globe flower"), "<answer>globe-flower</answer>", 0 },
        { "wrong class", Wrap("sunflower"), "<answer>lotus</answer>", 0 },
        { "multi-line answer falls back to whole text", "<think>This is a lotus.</think><answer>water\nlily</answer>", "<answer>lotus</answer>", 1 },
        { "no tags, name in text", "It is clearly a lotus flower.", "<answer>lotus</answer>", 1 },
    };

    [Theory, MemberData(nameof(ClassRows))]
    public void ClassificationMatchesTheOfficialBehaviour(string name, string completion, string solution, double accuracy) =>
        Assert.True(Rewards.Classification().Score(completion, solution)["accuracy"] == accuracy, name);

    [Fact]
    public void ClassificationFormatIsZeroWithoutTags() =>
        Assert.Equal(0, Rewards.Classification().Score("It is clearly a lotus flower.", "<answer>lotus</answer>")["format"]);

    const string Gt = "<answer> (120,330),(560,900) </answer>";

    // Expected values computed with the formula of spec §4.9 (GIoU with signed areas, corners ÷ 1000).
    public static TheoryData<string, string, double> GroundingRows => new()
    {
        { "exact string", Wrap("(120,330),(560,900)"), 2.0 },
        { "exact box, other spacing", Wrap("( 120 , 330 ) , ( 560 , 900 )"), 2.0 },
        { "near box", Wrap("(118,335),(555,896)"), 1.968621245012426 },
        { "disjoint box", Wrap("(600,300),(900,850)"), 0.8884615384615385 },
        { "no box", Wrap("the woman on the left"), 0 },
        { "bracket format", Wrap("[120, 330, 560, 900]"), 0 },
        { "degenerate point box inside", Wrap("(300,600),(300,600)"), 1.0 },
        { "point box at the origin", Wrap("(0,0),(0,0)"), 0.4976190476190476 },
        { "swapped corners", Wrap("(560,900),(120,330)"), 2.0 },
        { "inverted on one axis", Wrap("(560,330),(120,900)"), 0.0 },
        { "two boxes pair the two top-left corners", Wrap("(120,330),(560,900),(600,300),(900,850)"), 0.8640350877192984 },
        { "multi-line answer (DOTALL on the completion)", "<think>x</think><answer>\n(118,335),\n(555,896)\n</answer>", 1.968621245012426 },
    };

    [Theory, MemberData(nameof(GroundingRows))]
    public void GroundingMatchesTheOfficialBehaviour(string name, string completion, double giouPlusOne)
    {
        double v = Rewards.Grounding().Score(completion, Gt)["giou"];
        Assert.True(Math.Abs(v - giouPlusOne) < 1e-12, $"{name}: {v} != {giouPlusOne}");
    }

    [Fact]
    public void ExactStringShortcutWinsEvenWithoutABox() =>
        Assert.Equal(2.0, Rewards.Grounding().Score(Wrap("no box here"), "<answer>no box here</answer>")["giou"]);

    [Fact]
    public void InvertedCornersCanLeaveZeroToTwo()
    {
        // Small GT, large prediction inverted on both axes: union/C far above 2 (spec §4.9 step 4).
        double high = Rewards.Grounding().Score(Wrap("(1000,1000),(0,0)"), "<answer>(100,100),(300,300)</answer>")["giou"];
        Assert.Equal(1 + (0.04 + 1) / 0.04 - 1, high, 9);
        double low = Rewards.Grounding().Score(Wrap("(1000,0),(0,1000)"), "<answer>(100,100),(300,300)</answer>")["giou"];
        Assert.True(low < 0, $"{low}");
    }
}
