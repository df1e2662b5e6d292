using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;

namespace VisualRft.Tests.Rewards;

// Inside VisualRft.* the name Rewards binds to the namespace first; the alias picks the factory class.
using Rewards = VisualRft.Rewards.Rewards;

/// <summary>
/// visual-rft-spec.md §4.7 edge-case table under the visual-rft preset. GT boxes [100,100,300,300] and
/// [500,500,700,700]; predictions use y1 = 101/501 (IoU 0.995) as the spec says, so the dropped math_verify
/// short-cut (§4.2) would not have fired either; IoU-threshold rows use GT [0,10,100,110].
/// </summary>
public class DetectionTableTests
{
    const string Gt1 = "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}]</answer>";
    const string Gt2 = "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}, {'Position': [500, 500, 700, 700], 'Confidence': 1}]</answer>";
    const string GtT = "<answer>[{'Position': [0, 10, 100, 110], 'Confidence': 1}]</answer>";
    const string A = "{'Position': [100, 101, 300, 300], 'Confidence': 0.9}";   // IoU 0.995 with GT 1
    const string B = "{'Position': [500, 501, 700, 700], 'Confidence': 0.8}";   // IoU 0.995 with GT 2

    static string Wrap(string answer) => $"<think>I look at the image.</think><answer>{answer}</answer>";

    public static TheoryData<string, string, string, double, double> Rows => new()
    {
        { "1 GT, IoU .995, c .9", Wrap($"[{A}]"), Gt1, 0.995, 0.9 },
        { "2 GT, 1 correct pred", Wrap($"[{A}]"), Gt2, 0.4975, 0.9 },
        { "2 GT, 2 correct preds (one exact)", Wrap($"[{A}, {{'Position': [500, 500, 700, 700], 'Confidence': 0.8}}]"), Gt2, 0.9975, 0.85 },
        { "1 GT, TP .9 + FP .2", Wrap($"[{A}, {{'Position': [600, 600, 700, 700], 'Confidence': 0.2}}]"), Gt1, 0.4975, 0.85 },
        { "1 GT, TP .9 + FP .9", Wrap($"[{A}, {{'Position': [600, 600, 700, 700], 'Confidence': 0.9}}]"), Gt1, 0.4975, 0.5 },
        { "1 GT, near-identical preds .9/.5", Wrap($"[{A}, {{'Position': [100, 102, 300, 300], 'Confidence': 0.5}}]"), Gt1, 0.4975, 0.7 },
        { "1 GT, exact duplicate pred", Wrap($"[{A}, {A}]"), Gt1, 0.995, 0.9 },
        { "IoU 0.49 unmatched, c .9", Wrap("[{'Position': [0, 11, 100, 60], 'Confidence': 0.9}]"), GtT, 0, 0.1 },
        { "IoU 0.50 unmatched (strict >), c .8", Wrap("[{'Position': [0, 11, 100, 61], 'Confidence': 0.8}]"), GtT, 0, 0.2 },
        { "IoU 0.51, c .8", Wrap("[{'Position': [0, 11, 100, 62], 'Confidence': 0.8}]"), GtT, 0.51, 0.8 },
        { "empty list", Wrap("[]"), Gt1, 0, 0 },
        { "No Objects", Wrap("No Objects"), Gt1, 0, 0 },
        { "answer spans several lines", Wrap($"[{A},\n{B}]"), Gt2, 0, 0 },
        { "truncated with think prefix", $"<think>two dogs</think><answer>[{A}, {B}, {{'Position': [1", Gt2, 0, 0 },
        { "truncated bare list", $"[{A}, {B}, {{'Position': [12, 3", Gt2, 0.995, 0.85 },
        { "no tags, bare list", $"[{A}]", Gt1, 0.995, 0.9 },
        { "[[{...}]]", Wrap($"[[{A}]]"), Gt1, 0.995, 0.9 },
        { "'Position': [[...]]", Wrap("[{'Position': [[100, 101, 300, 300]], 'Confidence': 0.9}]"), Gt1, 0.995, 0.9 },
        { "missing Confidence", Wrap("[{'Position': [100, 101, 300, 300]}]"), Gt1, 0, 0 },
        { "lower-case keys", Wrap("[{'position': [100, 101, 300, 300], 'confidence': 0.9}]"), Gt1, 0, 0 },
        { "confidence as string", Wrap("[{'Position': [100, 101, 300, 300], 'Confidence': '0.9'}]"), Gt1, 0, 0 },
        { "confidence null", Wrap("[{'Position': [100, 101, 300, 300], 'Confidence': null}]"), Gt1, 0, 0 },
        { "5-element Position", Wrap("[{'Position': [100, 101, 300, 300, 1], 'Confidence': 0.9}]"), Gt1, 0, 0 },
        { "dict instead of list", Wrap(A), Gt1, 0, 0 },
        { "list of lists", Wrap("[[100, 101, 300, 300], [500, 501, 700, 700]]"), Gt1, 0, 0 },
        { "trailing text, 1 box", Wrap($"[{A}] That is all."), Gt1, 0, 0 },
        { "trailing text, 2 boxes (2 GT)", Wrap($"[{A}, {B}] That is all."), Gt2, 0.4975, 0.9 },
        { "inverted corners", Wrap("[{'Position': [300, 101, 100, 300], 'Confidence': 0.7}]"), Gt1, 0, 1 - 0.7 },
        { "float coordinates", Wrap("[{'Position': [100.0, 101.0, 300.0, 300.0], 'Confidence': 0.9}]"), Gt1, 0.995, 0.9 },
        { "double quotes", Wrap("[{\"Position\": [100, 101, 300, 300], \"Confidence\": 0.9}]"), Gt1, 0.995, 0.9 },
    };

    [Theory, MemberData(nameof(Rows))]
    public void VisualRftMatchesTheOfficialTable(string name, string completion, string solution, double iou, double confidence)
    {
        var r = Rewards.Detection().Score(completion, solution);
        Assert.True(Math.Abs(r["iou"] - iou) < 1e-9, $"{name}: iou {r["iou"]} != {iou}");
        Assert.True(Math.Abs(r["confidence"] - confidence) < 1e-9, $"{name}: confidence {r["confidence"]} != {confidence}");
    }

    [Fact]
    public void NanConfidencePropagatesToTheTotalLikeTheOriginal()
    {
        var r = Rewards.Detection().Score(Wrap("[{'Position': [100, 101, 300, 300], 'Confidence': NaN}]"), Gt1);
        Assert.Equal(0.995, r["iou"], 12);
        Assert.True(double.IsNaN(r["confidence"]));
        Assert.True(double.IsNaN(r.Total));
    }

    [Fact]
    public void FormatRewardFollowsTheFullMatchRules()
    {
        var d = Rewards.Detection();
        Assert.Equal(1, d.Score(Wrap($"[{A}]"), Gt1)["format"]);
        Assert.Equal(1, d.Score($"<think>a\nb</think>\n<answer>[{A}]</answer>", Gt1)["format"]);   // newlines inside and between are fine
        Assert.Equal(0, d.Score(" " + Wrap($"[{A}]"), Gt1)["format"]);                            // anything before <think>
        Assert.Equal(0, d.Score(Wrap($"[{A}]") + "\n", Gt1)["format"]);                           // anything after </answer>
        Assert.Equal(1, d.Score("<think>x</think><answer>a</answer><think>y</think><answer>b</answer>", Gt1)["format"]);
        Assert.Equal(0, d.Score("<answer>a</answer><think>x</think>", Gt1)["format"]);
        Assert.Equal(0, d.Score($"[{A}]", Gt1)["format"]);
    }

    [Fact]
    public void TotalIsTheSumOfTheThreeComponents()
    {
        var r = Rewards.Detection().Score(Wrap($"[{A}]"), Gt1);
        Assert.Equal(["iou", "confidence", "format"], r.Components.Select(c => c.Name));
        Assert.Equal(0.995 + 0.9 + 1, r.Total, 12);
        var weighted = Rewards.Detection().WithWeights(new Dictionary<string, double> { ["confidence"] = 0 }).Score(Wrap($"[{A}]"), Gt1);
        Assert.Equal(0.995 + 1, weighted.Total, 12);
    }

    [Fact]
    public void AMalformedBoxThatIsNeverComparedIsToleratedAsInPython()
    {
        // GT already matched by the confident box, so the second box's string Position is never unpacked.
        var r = Rewards.Detection().Score(Wrap($"[{A}, {{'Position': 'oops', 'Confidence': 0.1}}]"), Gt1);
        Assert.Equal(0.4975, r["iou"], 12);
        Assert.Equal((0.9 + 0.9) / 2, r["confidence"], 12);
        // With the malformed box first in confidence order it is compared and the whole answer scores 0.
        var z = Rewards.Detection().Score(Wrap($"[{A}, {{'Position': 'oops', 'Confidence': 0.95}}]"), Gt1);
        Assert.Equal(0, z["iou"]);
        Assert.Equal(ParseFailureKind.OfficialCodeError, z.Failure!.Kind);
    }

    [Fact]
    public void FailuresSayWhy()
    {
        var r = Rewards.Detection().Score(Wrap("No Objects"), Gt1);
        Assert.Equal(ParseFailureKind.InvalidJson, r.Failure!.Kind);
        var parsed = Answers.ParseDetection(Wrap($"[{A}, {B}]"), RewardPreset.VisualRft);
        Assert.Null(parsed.Failure);
        Assert.Equal(2, parsed.Boxes.Count);
        Assert.Equal(0.8, parsed.Boxes[1].Confidence);
    }
}
