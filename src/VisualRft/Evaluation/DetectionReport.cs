using System.Text;
using System.Text.Json;

namespace VisualRft.Evaluation;

/// <summary>
/// The JSON that <c>vrft eval coco|lvis</c> writes: <c>stats</c> (COCO: the 12 numbers of <c>summarize()</c> in order,
/// with <c>statNames</c>; LVIS: its own summary as an object), both as fractions with −1 where undefined, exactly as the
/// tools print them; <c>mAP</c>, the paper's reported number (mean per-class AP over the evaluated categories that have
/// ground truth, percent; <c>categoriesWithoutGroundTruth</c> counts the others);
/// and per category <c>AP</c>, <c>AP50</c>, <c>AP75</c> (percent, null without ground truth; LVIS adds
/// <c>APAllAreas</c>, the per-class AP the paper averages).
/// </summary>
public static class DetectionReport
{
    public static string ToJson(DetectionEvaluation evaluation)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            switch (evaluation)
            {
                case CocoEvaluation coco:
                    w.WriteString("evaluation", "coco-bbox (pycocotools COCOeval)");
                    w.WriteStartArray("stats");
                    foreach (var s in coco.Stats) w.WriteNumberValue(s);
                    w.WriteEndArray();
                    w.WriteStartArray("statNames");
                    foreach (var n in CocoEvaluation.StatNames) w.WriteStringValue(n);
                    w.WriteEndArray();
                    break;
                case LvisEvaluation lvis:
                    w.WriteString("evaluation", "lvis-bbox (LVIS API LVISEval)");
                    w.WriteStartObject("stats");
                    foreach (var (k, v) in lvis.Results) w.WriteNumber(k, v);
                    w.WriteEndObject();
                    break;
            }
            Number(w, "mAP", evaluation.PaperMeanAp());
            w.WriteNumber("categoriesWithoutGroundTruth", evaluation.PerCategory.Count(c => c.GroundTruths == 0));
            w.WriteStartArray("perCategory");
            foreach (var c in evaluation.PerCategory)
            {
                w.WriteStartObject();
                w.WriteNumber("id", c.CategoryId);
                w.WriteString("name", c.Name);
                w.WriteNumber("groundTruths", c.GroundTruths);
                w.WriteNumber("detections", c.Detections);
                Number(w, "AP", c.Ap);
                Number(w, "AP50", c.Ap50);
                Number(w, "AP75", c.Ap75);
                if (evaluation is LvisEvaluation) Number(w, "APAllAreas", c.ApAllAreas);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    static void Number(Utf8JsonWriter w, string key, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(key, v); else w.WriteNull(key);
    }
}
