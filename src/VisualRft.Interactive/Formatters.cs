using Microsoft.DotNet.Interactive.Formatting;
using VisualRft.Data;
using VisualRft.Evaluation;
using VisualRft.Grpo;
using VisualRft.Policy;
using VisualRft.Views;

namespace VisualRft.Interactive;

/// <summary>
/// Every record's view (VisualRft.Views.Render) as the kernel's formatter: text/html for notebooks, image/svg+xml for
/// viewers that show no HTML, and one text/plain line instead of an object dump.
/// </summary>
public static class Formatters
{
    public const string Svg = "image/svg+xml";

    /// <summary>The types with a view. Lists register by interface: a <c>List&lt;EvaluationReport&gt;</c> shows as a table.</summary>
    public static readonly Type[] Types =
    [
        typeof(VisualSample), typeof(SyntheticDataset), typeof(RolloutGroup), typeof(ScoredGroup), typeof(AdvantageBatch),
        typeof(Episode), typeof(UpdateResult), typeof(TrainingDashboard), typeof(EvaluationReport), typeof(IReadOnlyList<EvaluationReport>),
        typeof(IReadOnlyList<Episode>), typeof(VisionLanguagePolicy), typeof(GrpoTrainer), typeof(Figure), typeof(View),
        typeof(Experiments.PaperTable), typeof(Experiments.TableComparison), typeof(Experiments.FewShotDetectionResult),
        typeof(Evaluation.LearnabilityReport), typeof(TinyModel.TinyModelCard), typeof(Interop.RescoredRun),
    ];

    public static void Register()
    {
        foreach (var type in Types)
        {
            Formatter.Register(type, (value, writer) => writer.Write(ViewOf(value).Html), HtmlFormatter.MimeType);
            Formatter.Register(type, (value, writer) => writer.Write(ViewOf(value).Svg), Svg);
            Formatter.Register(type, (value, writer) => writer.Write(ViewOf(value).Text), PlainTextFormatter.MimeType);
            Formatter.SetPreferredMimeTypesFor(type, HtmlFormatter.MimeType, Svg, PlainTextFormatter.MimeType);
        }
    }

    /// <summary>The view of a value (a <see cref="View"/> is its own view); the last one is kept, since a display asks for
    /// three MIME types of the same value in a row.</summary>
    static View ViewOf(object value)
    {
        if (value is View v) return v;
        lock (Last)
        {
            if (Last.TryGetTarget(out var cached) && ReferenceEquals(cached.Value, value)) return cached.View;
            var view = Render.Any(value) ?? throw new InvalidOperationException($"no view for {value.GetType()}");
            Last.SetTarget(new Cached(value, view));
            return view;
        }
    }

    sealed record Cached(object Value, View View);
    static readonly WeakReference<Cached> Last = new(new Cached(new object(), new View("", "", "")));
}
