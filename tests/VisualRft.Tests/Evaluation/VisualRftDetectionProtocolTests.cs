using System.Text;
using VisualRft.Data;
using VisualRft.Evaluation;
using VisualRft.Geometry;

namespace VisualRft.Tests.Evaluation;

public class VisualRftDetectionProtocolTests
{
    static readonly CocoImage Image = new(7, "x.jpg", 640, 480, null, new HashSet<long>(), new HashSet<long>());

    [Fact]
    public void A_response_becomes_pixel_detections_scored_by_confidence()
    {
        var r = VisualRftDetectionProtocol.Parse(
            "<think>two</think>\n<answer>[[{'Position': [100, 200, 300, 400], 'Confidence': 0.9},\n{'Position': [100, 200, 300, 400], 'Confidence': 0.5}, {'Position': [0, 0, 500, 1000], 'Confidence': 0.25}]]</answer>",
            Image, 3);
        Assert.Null(r.Error);
        Assert.Equal(2, r.Detections.Count);   // duplicate Position removed, the first kept
        var d = r.Detections[0];
        Assert.Equal((7L, 3L, 0.9), (d.ImageId, d.CategoryId, d.Score));
        Assert.Equal([100 / 1000.0 * 640, 200 / 1000.0 * 480, 300 / 1000.0 * 640 - 100 / 1000.0 * 640, 400 / 1000.0 * 480 - 200 / 1000.0 * 480], d.Bbox);
    }

    [Theory]
    [InlineData("<answer>No Objects</answer>", 0, false)]                                            // not JSON: skipped, no error
    [InlineData("<answer>[]</answer>", 0, true)]                                                     // IndexError
    [InlineData("<answer>['a']</answer>", 0, false)]                                                 // first element a string: skipped
    [InlineData("<answer>[{'Position': [1, 2, 3, 4], 'Confidence': 0.5}, {'Position': [1, 2, 3]}]</answer>", 1, true)]   // fails on the second
    [InlineData("<answer>[{'Position': [1, 2, 3, 4], 'Confidence': 0.5}, {'Confidence': 1}]</answer>", 0, true)]        // remove_duplicates fails first
    [InlineData("<answer>[{'Position': [1, 2, 3, 4], 'Confidence': 0.5}, {'Position': [5, 6, 7, 8], 'Confidence': 0.4}, {'Posi</answer>", 2, false)]   // truncation repair drops the tail
    [InlineData("<answer>[{'Position': [1, 2, 3, 4], 'Confidence': 0.5}, {'Posi", 0, false)]   // no </answer>: the script wraps the tag twice, json fails
    public void Failures_follow_the_evaluation_script(string response, int boxes, bool error)
    {
        var r = VisualRftDetectionProtocol.Parse(response, Image, 1);
        Assert.Equal(boxes, r.Detections.Count);
        Assert.Equal(error, r.Error != null);
    }

    [Fact]
    public void Queries_come_from_the_existence_map_filtered_by_the_selected_classes()
    {
        var gt = CocoDataset.Parse(new MemoryStream(Encoding.UTF8.GetBytes(
            """{"images":[{"id":2,"width":10,"height":10},{"id":1,"width":10,"height":10}],"categories":[{"id":1,"name":"cat"},{"id":2,"name":"dog"},{"id":3,"name":"bus"}],"annotations":[]}""")), "gt");
        var map = new ExistenceMap(new Dictionary<long, IReadOnlyList<string>> { [1] = ["dog", "bus", "cat"], [2] = ["bus"] }, "map");
        var q = VisualRftDetectionProtocol.Queries(gt, map, ["cat", "bus"]);
        Assert.Equal([(2L, "bus"), (1L, "bus"), (1L, "cat")], q.Select(x => (x.Image.Id, x.Category.Name)));
        Assert.Contains("'bus'", q[0].Prompt);
        Assert.Throws<KeyNotFoundException>(() => VisualRftDetectionProtocol.Queries(gt, map, ["zebra"]));
        Assert.Throws<KeyNotFoundException>(() => VisualRftDetectionProtocol.Queries(gt, new ExistenceMap(new Dictionary<long, IReadOnlyList<string>> { [1] = [] }, "m"), ["cat"]));
    }

    [Fact]
    public void Reported_mAP_is_the_mean_of_per_class_AP_over_the_selected_classes()
    {
        var gt = CocoDataset.Parse(new MemoryStream(Encoding.UTF8.GetBytes(
            """{"images":[{"id":1,"width":100,"height":100}],"categories":[{"id":1,"name":"a"},{"id":2,"name":"b"},{"id":3,"name":"c"}],"annotations":[{"image_id":1,"category_id":1,"bbox":[0,0,50,50]},{"image_id":1,"category_id":2,"bbox":[0,0,50,50]},{"image_id":1,"category_id":3,"bbox":[0,0,50,50]}]}""")), "gt");
        var e = CocoEvaluator.Evaluate(gt, [new CocoDetection(1, 1, [0, 0, 50, 50], 0.9), new CocoDetection(1, 2, [0, 0, 50, 20], 0.9)]);
        Assert.Equal(100 * (1 - Math.Pow(2, -52)), e["a"].Ap, 9);
        Assert.Equal(0, e["b"].Ap);                                      // IoU 0.4: a false positive at every threshold
        Assert.Equal(e["a"].Ap / 2, e.PaperMeanAp(["a", "b"]), 12);      // unweighted, not pooled
        Assert.Equal(e["a"].Ap / 3, e.PaperMeanAp(), 12);
        Assert.NotEqual(e.Stats[0] * 100, e.PaperMeanAp(["a", "b"]), 6); // summarize()'s AP is over all categories
    }
}
