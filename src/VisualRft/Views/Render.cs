using System.Reflection;
using VisualRft.Data;
using VisualRft.Evaluation;
using VisualRft.Grpo;
using VisualRft.Policy;

namespace VisualRft.Views;

/// <summary>
/// The view of every record the package hands out: <c>Render.Of(x).Html</c> for a page, <c>.Svg</c> for a static picture,
/// <c>.Text</c> for a line. The kernel extension registers these as formatters; reports and plain C# call them directly.
/// </summary>
public static class Render
{
    public static View Of(VisualSample sample) => SampleViews.Sample(sample);
    public static View Of(SyntheticDataset dataset) => SampleViews.Dataset(dataset);
    public static View Of(RolloutGroup rollout) => RolloutViews.Rollout(rollout);
    public static View Of(ScoredGroup scored) => RolloutViews.Scored(scored);
    public static View Of(AdvantageBatch batch) => RolloutViews.Batch(batch);
    public static View Of(Episode episode) => TrainingViews.Step(episode);
    public static View Of(UpdateResult update) => TrainingViews.Update(update);
    public static View Of(TrainingDashboard dashboard) => TrainingViews.Dashboard(dashboard);
    public static View Of(EvaluationReport report) => EvaluationViews.Report(report);
    public static View Of(IReadOnlyList<EvaluationReport> reports) => EvaluationViews.Compare(reports);
    public static View Of(VisionLanguagePolicy policy) => SummaryViews.Policy(policy);
    public static View Of(GrpoTrainer trainer) => SummaryViews.Trainer(trainer);
    public static View Of(Figure figure) => Chart.View(figure);
    public static View Of(Experiments.PaperTable table) => TableViews.Paper(table);
    public static View Of(Experiments.TableComparison comparison) => TableViews.Comparison(comparison);
    public static View Of(Experiments.FewShotDetectionResult result) => ExperimentViews.FewShot(result);
    public static View Of(LearnabilityReport report) => ExperimentViews.Learnability(report);
    public static View Of(TinyModel.TinyModelCard card) => ExperimentViews.Card(card);
    /// <summary>A run from verl, TRL, EasyR1 or W&amp;B, rejoined and re-scored (<see cref="Interop.Rollouts.Rescore"/>).</summary>
    public static View Of(Interop.RescoredRun run) => ImportViews.Run(run);

    /// <summary>The dashboard of a list of episodes (e.g. <c>trainer.History</c>).</summary>
    public static View Of(IReadOnlyList<Episode> episodes) => TrainingViews.Dashboard(new TrainingDashboard(
        [.. episodes.Select(e => e.Metrics)], episodes.Count == 0 ? 0 : episodes[^1].Step, episodes.Count,
        TimeSpan.FromMilliseconds(episodes.Sum(e => e.Metrics.Time.TotalMs)), "episodes"));

    /// <summary>The token view: every completion token coloured by <paramref name="by"/>.</summary>
    public static View Tokens(RolloutGroup rollout, TokenColor by = TokenColor.LogProb) => TokenViews.Tokens(rollout, by);
    public static View Tokens(AdvantageBatch batch, TokenColor by = TokenColor.Advantage) => TokenViews.Tokens(batch.Rollout, by, batch);

    /// <summary>One prompt's completions across the steps of these episodes (or of an <c>episodes.jsonl</c> read with EpisodeLog).</summary>
    public static View History(IEnumerable<EpisodeRow> rows, string sampleId) => TrainingViews.PromptHistory(rows, sampleId);
    public static View History(IEnumerable<Episode> episodes, string sampleId) => TrainingViews.PromptHistory(episodes.SelectMany(e => e.Rows), sampleId);

    /// <summary>
    /// The types with a view: the parameter types of the <c>Of</c> overloads above, the one list of them, which
    /// <see cref="Any"/> dispatches on and the kernel extension registers as formatters.
    /// </summary>
    public static IReadOnlyList<Type> Types => [.. Drawers.Select(d => d.Type)];

    static readonly (Type Type, MethodInfo Of)[] Drawers = [.. typeof(Render).GetMethods(BindingFlags.Public | BindingFlags.Static)
        .Where(m => m.Name == nameof(Of) && m.GetParameters().Length == 1)
        .Select(m => (m.GetParameters()[0].ParameterType, m))];

    /// <summary>The view of any record above, or null for other values (the dispatch the kernel formatters use).</summary>
    public static View? Any(object? value) =>
        value is not null && Drawers.FirstOrDefault(d => d.Type.IsInstanceOfType(value)).Of is { } of
            ? (View)of.Invoke(null, BindingFlags.DoNotWrapExceptions, null, [value], null)!
            : null;
}
