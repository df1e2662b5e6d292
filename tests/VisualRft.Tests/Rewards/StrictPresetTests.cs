using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;

namespace VisualRft.Tests.Rewards;

// Inside VisualRft.* the name Rewards binds to the namespace first; the alias picks the factory class.
using Rewards = VisualRft.Rewards.Rewards;

/// <summary>The user-reported hacks (spec §8, anchors.md §B) scored as intended under strict, and strict = visual-rft on
/// well-formed answers.</summary>
public class StrictPresetTests
{
    static string Wrap(string answer) => $"<think>Looking closely.</think><answer>{answer}</answer>";
    const string Gt1 = "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}]</answer>";
    const string Gt2 = "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}, {'Position': [500, 500, 700, 700], 'Confidence': 1}]</answer>";

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void EmptyAnswersScoreZero(string answer)
    {
        Assert.Equal(0, Rewards.Classification(RewardPreset.Strict).Score(Wrap(answer), "<answer>lotus</answer>")["accuracy"]);
        Assert.Equal(0, Rewards.Detection(RewardPreset.Strict).Score(Wrap(answer), Gt1)["iou"]);
        Assert.Equal(0, Rewards.Grounding(RewardPreset.Strict).Score(Wrap(answer), "<answer>(1,2),(3,4)</answer>")["giou"]);
        Assert.Equal(1, Rewards.Classification().Score(Wrap(answer), "<answer>lotus</answer>")["accuracy"]);   // the original pays
    }

    [Theory]
    [InlineData("rose or lotus")]
    [InlineData("lotus, rose")]
    [InlineData("lotus; rose")]
    [InlineData("lotus / rose")]
    [InlineData("lotus and rose")]
    public void AnswersNamingSeveralClassesScoreZero(string answer)
    {
        var r = Rewards.Classification(RewardPreset.Strict).Score(Wrap(answer), "<answer>lotus</answer>");
        Assert.Equal(0, r["accuracy"]);
        Assert.Equal(ParseFailureKind.MultipleClasses, r.Failure!.Kind);
    }

    [Fact]
    public void BrandOnlyNamesScoreZero()
    {
        Assert.Equal(0, Rewards.Classification(RewardPreset.Strict).Score(Wrap("BMW"), "<answer>2012 BMW M3 Coupe</answer>")["accuracy"]);
        Assert.Equal(0, Rewards.Classification(RewardPreset.Strict).Score(Wrap("A"), "<answer>A320</answer>")["accuracy"]);
    }

    [Theory]
    [InlineData("2012 BMW M3 Coupe", "2012 BMW M3 Coupe")]
    [InlineData("2012_bmw_m3_coupe", "2012 BMW M3 Coupe")]
    [InlineData("globe-flower", "globe flower")]
    [InlineData("Garden Phlox.", "garden phlox")]
    [InlineData("F/A-18", "F/A-18")]
    [InlineData("\n  garden phlox\n", "garden phlox")]   // multi-line answer accepted
    public void NormalisedExactMatchesScoreOne(string answer, string truth) =>
        Assert.Equal(1, Rewards.Classification(RewardPreset.Strict).Score(Wrap(answer), $"<answer>{truth}</answer>")["accuracy"]);

    [Fact]
    public void AliasesAreAccepted()
    {
        var r = Rewards.Classification(RewardPreset.Strict, new Dictionary<string, IReadOnlyList<string>> { ["Boeing 737-800"] = ["737-800", "B738"] });
        Assert.Equal(1, r.Score(Wrap("b738"), "<answer>Boeing 737-800</answer>")["accuracy"]);
        Assert.Equal(1, r.Score(Wrap("737 800"), "<answer>Boeing 737-800</answer>")["accuracy"]);
        Assert.Equal(0, r.Score(Wrap("737"), "<answer>Boeing 737-800</answer>")["accuracy"]);
        Assert.Throws<ArgumentException>(() => Rewards.Classification(RewardPreset.VisualRft, new Dictionary<string, IReadOnlyList<string>>()));
    }

    [Theory]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("-Infinity")]
    [InlineData("1.5")]
    [InlineData("-0.1")]
    [InlineData("'0.9'")]
    [InlineData("true")]
    public void InvalidConfidencesMakeTheAnswerInvalid(string confidence)
    {
        var r = Rewards.Detection(RewardPreset.Strict).Score(Wrap($"[{{'Position': [100, 101, 300, 300], 'Confidence': {confidence}}}]"), Gt1);
        Assert.Equal(0, r["iou"]);
        Assert.Equal(0, r["confidence"]);
        Assert.True(double.IsFinite(r.Total));
        Assert.Equal(ParseFailureKind.InvalidConfidence, r.Failure!.Kind);
    }

    [Fact]
    public void SwappedLisaCornersAreNormalised()
    {
        const string gt = "<answer> (120,330),(560,900) </answer>";
        var strict = Rewards.Grounding(RewardPreset.Strict);
        Assert.Equal(2.0, Rewards.Grounding().Score(Wrap("(200,200),(100,100)"), "<answer>(100,100),(200,200)</answer>")["giou"]);   // the bug
        Assert.Equal(strict.Score(Wrap("(118,335),(555,896)"), gt)["giou"], strict.Score(Wrap("(555,896),(118,335)"), gt)["giou"], 12);
        Assert.Equal(strict.Score(Wrap("(120,330),(560,900)"), "<answer>(500,500),(600,600)</answer>")["giou"],
            strict.Score(Wrap("(560,900),(120,330)"), "<answer>(500,500),(600,600)</answer>")["giou"], 12);
        Assert.Equal(2.0, strict.Score(Wrap("(200,200),(100,100)"), "<answer>(100,100),(200,200)</answer>")["giou"]);   // the same box, fairly
        Assert.True(strict.Score(Wrap("(560,900),(120,330)"), "<answer>(500,500),(600,600)</answer>")["giou"] < 2);
        var two = strict.Score(Wrap("(120,330),(560,900),(600,300),(900,850)"), gt);
        Assert.Equal(0, two["giou"]);
        Assert.Equal(ParseFailureKind.MultipleBoxes, two.Failure!.Kind);
    }

    [Fact]
    public void MultiLineDetectionAnswersAreAccepted()
    {
        var r = Rewards.Detection(RewardPreset.Strict).Score(
            Wrap("[{'Position': [100, 101, 300, 300], 'Confidence': 0.9},\n {'Position': [500, 501, 700, 700], 'Confidence': 0.8}]"), Gt2);
        Assert.Equal(0.995, r["iou"], 12);
        Assert.Equal(0.85, r["confidence"], 12);
    }

    [Fact]
    public void NoObjectsIsDefined()
    {
        var d = Rewards.Detection(RewardPreset.Strict);
        var both = d.Score(Wrap("No Objects"), "<answer>No Objects</answer>");
        Assert.Equal((1.0, 1.0), (both["iou"], both["confidence"]));
        Assert.Equal(0, d.Score(Wrap("No Objects"), Gt1)["iou"]);
        var fp = d.Score(Wrap("[{'Position': [100, 101, 300, 300], 'Confidence': 0.25}]"), "<answer>[]</answer>");
        Assert.Equal((0.0, 0.75), (fp["iou"], fp["confidence"]));
    }

    public static TheoryData<VisualTask, string, string> WellFormed => new()
    {
        { VisualTask.Detection, Wrap("[{'Position': [100, 101, 300, 300], 'Confidence': 0.9}]"), Gt1 },
        { VisualTask.Detection, Wrap("[{'Position': [100, 101, 300, 300], 'Confidence': 0.9}, {'Position': [600, 600, 700, 700], 'Confidence': 0.2}]"), Gt1 },
        { VisualTask.Detection, Wrap("[{'Position': [100, 101, 300, 300], 'Confidence': 0.9}, {'Position': [500, 501, 700, 700], 'Confidence': 0.8}]"), Gt2 },
        { VisualTask.Detection, Wrap("[{'Position': [0, 11, 100, 61], 'Confidence': 0.8}]"), "<answer>[{'Position': [0, 10, 100, 110], 'Confidence': 1}]</answer>" },
        { VisualTask.Detection, Wrap("[{'Position': [900, 900, 950, 950], 'Confidence': 0.4}]"), Gt2 },
        { VisualTask.Classification, Wrap("garden phlox"), "<answer>garden phlox</answer>" },
        { VisualTask.Classification, Wrap("sunflower"), "<answer>lotus</answer>" },
        { VisualTask.Grounding, Wrap("(118,335),(555,896)"), "<answer> (120,330),(560,900) </answer>" },
        { VisualTask.Grounding, Wrap("(600,300),(900,850)"), "<answer> (120,330),(560,900) </answer>" },
        { VisualTask.Grounding, Wrap("(120,330),(560,900)"), "<answer> (120,330),(560,900) </answer>" },
    };

    [Theory, MemberData(nameof(WellFormed))]
    public void StrictEqualsVisualRftOnWellFormedAnswers(VisualTask task, string completion, string solution)
    {
        var a = TaskReward.Create(task, RewardPreset.VisualRft).Score(completion, solution);
        var b = TaskReward.Create(task, RewardPreset.Strict).Score(completion, solution);
        Assert.Equal(a.Components.Select(c => c.Name), b.Components.Select(c => c.Name));
        foreach (var (x, y) in a.Components.Zip(b.Components)) Assert.Equal(x.Value, y.Value, 12);
    }
}
