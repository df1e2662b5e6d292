using VisualRft.Data;
using VisualRft.Geometry;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;

namespace VisualRft.Evaluation;

/// <summary>
/// One prompt of a learnability check: whether the greedy answer hits, how many of the G sampled answers hit a target or
/// a distractor, and whether the G rewards differ (a group whose rewards are all equal has zero advantages: no signal).
/// </summary>
/// <param name="SampleId">The prompt's sample.</param>
/// <param name="GreedyHit">The greedy answer hits (detection and grounding: a box with IoU ≥ 0.5 with a target box;
/// classification: the right class).</param>
/// <param name="Hits">Sampled answers that hit.</param>
/// <param name="DistractorHits">Sampled answers with a box on a distractor (IoU ≥ 0.5 with an object of another category,
/// or with another object than the grounding target).</param>
/// <param name="FormatFailures">Sampled answers whose format reward is 0.</param>
/// <param name="RewardMean">Mean total reward of the G answers.</param>
/// <param name="RewardStd">Their population standard deviation, as GRPO's advantages use it.</param>
/// <param name="Best">The best-rewarded sampled answer, to look at.</param>
public sealed record PromptLearnability(string SampleId, bool GreedyHit, int Hits, int DistractorHits, int FormatFailures,
    double RewardMean, double RewardStd, string Best)
{
    /// <summary>All G rewards equal (std below 1e-6): GRPO's advantages are zero for this prompt.</summary>
    public bool ZeroStd => RewardStd < 1e-6;
}

/// <summary>
/// What <see cref="Diagnostics.Learnability"/> measured: the rates over prompts and a plain verdict. GRPO only sharpens what
/// the model already samples (DESIGN.md, "Decisions added 2026-12"): pass@G well above pass@1 and few zero-std groups mean
/// the answers to amplify are there; hits on distractors as often as on targets mean the reward has no direction.
/// </summary>
/// <param name="Task">The samples' task.</param>
/// <param name="G">Samples per prompt (temperature 1, top-k 50, as GRPO samples).</param>
/// <param name="GreedyHit">Share of prompts whose greedy answer hits.</param>
/// <param name="Pass1">Sampled pass@1: share of sampled answers that hit.</param>
/// <param name="PassG">pass@G: share of prompts with at least one hit among G.</param>
/// <param name="ZeroStdShare">Share of prompts whose G rewards are all equal.</param>
/// <param name="TargetHitRate">Share of sampled answers with a box on a target (= pass@1).</param>
/// <param name="DistractorHitRate">Share of sampled answers with a box on a distractor.</param>
/// <param name="FormatFailureRate">Share of sampled answers whose format reward is 0.</param>
/// <param name="RewardMean">Mean reward of the sampled answers.</param>
/// <param name="Learnable">Signal on at least half the prompts, targets hit more often than distractors, pass@G ≥ 0.1.</param>
/// <param name="Verdict">One line: is there signal, and for how many prompts.</param>
/// <param name="Findings">The reasons behind it, each a sentence.</param>
/// <param name="Prompts">Per prompt.</param>
public sealed record LearnabilityReport(VisualTask Task, int G, double GreedyHit, double Pass1, double PassG, double ZeroStdShare,
    double TargetHitRate, double DistractorHitRate, double FormatFailureRate, double RewardMean, bool Learnable, string Verdict,
    IReadOnlyList<string> Findings, IReadOnlyList<PromptLearnability> Prompts)
{
    /// <summary>Share of prompts whose group carries a signal (rewards not all equal).</summary>
    public double SignalShare => 1 - ZeroStdShare;
}

/// <summary>Checks a user runs before training.</summary>
public static class Diagnostics
{
    /// <summary>
    /// Samples <paramref name="g"/> answers per prompt as GRPO would (temperature 1, top-k 50) and one greedy answer, scores
    /// them with <paramref name="reward"/>, and says whether GRPO has anything to learn from: pass@1 against pass@G, the
    /// share of zero-std groups, hits on targets against hits on distractors, format failures. Reproducible for a seed.
    /// </summary>
    public static LearnabilityReport Learnability(VisionLanguagePolicy policy, IReadOnlyList<VisualSample> samples, TaskReward reward,
        int g = 8, int maxNewTokens = 128, long seed = 42, IProgress<int>? progress = null)
    {
        if (samples.Count == 0) throw new ArgumentException("no samples to check", nameof(samples));
        if (g < 2) throw new ArgumentOutOfRangeException(nameof(g), g, "a group needs at least 2 answers");
        var task = samples[0].Task;
        if (samples.Any(s => s.Task != task)) throw new ArgumentException("the samples mix tasks; check one task at a time", nameof(samples));
        var greedy = PolicyEvaluator.Answer(policy, samples,
            new SamplingOptions(MaxNewTokens: maxNewTokens, Greedy: true, StopTokenIds: policy.StopTokenIds, PadTokenId: policy.PadTokenId));
        var sampled = PolicyEvaluator.Answer(policy, samples,
            new SamplingOptions(MaxNewTokens: maxNewTokens, Temperature: 1.0, TopK: 50, StopTokenIds: policy.StopTokenIds, PadTokenId: policy.PadTokenId),
            g, seed, batchSize: Math.Max(1, 32 / g), progress: progress);
        var prompts = new List<PromptLearnability>(samples.Count);
        for (int i = 0; i < samples.Count; i++)
        {
            var s = samples[i];
            var frames = greedy.Frames[i];
            var answers = sampled.Completions.Skip(i * g).Take(g).ToList();
            var rewards = answers.Select(a => reward.Score(a, s.Solution)).ToList();
            var totals = rewards.Select(r => r.Total).ToArray();
            var mean = totals.Average();
            var std = Math.Sqrt(totals.Average(t => (t - mean) * (t - mean)));
            var looks = answers.Select(a => Look(a, s, policy.AnswerFrame, frames, reward.Preset)).ToList();
            var format = rewards.Count(r => r.Components.Any(c => c.Name == "format") && r["format"] == 0);
            var best = answers[Array.IndexOf(totals, totals.Max())];
            prompts.Add(new PromptLearnability(s.Id, Look(greedy.Completions[i], s, policy.AnswerFrame, frames, reward.Preset).Target,
                looks.Count(l => l.Target), looks.Count(l => l.Distractor), format, mean, double.IsFinite(std) ? std : 0, best));
        }
        double Share(Func<PromptLearnability, bool> f) => prompts.Count(f) / (double)prompts.Count;
        double Rate(Func<PromptLearnability, int> f) => prompts.Sum(f) / (double)(prompts.Count * g);
        var report = new LearnabilityReport(task, g, Share(p => p.GreedyHit), Rate(p => p.Hits), Share(p => p.Hits > 0), Share(p => p.ZeroStd),
            Rate(p => p.Hits), Rate(p => p.DistractorHits), Rate(p => p.FormatFailures), prompts.Average(p => p.RewardMean), false, "", [], prompts);
        return Judge(report);
    }

    /// <summary>The verdict and its reasons, from the rates alone (so that a test can check each rule).</summary>
    public static LearnabilityReport Judge(LearnabilityReport r)
    {
        var findings = new List<string>();
        var against = new List<string>(); // the findings that make the verdict "no", strongest first
        string P(double v) => $"{100 * v:F0} %";
        var direction = r.Task == VisualTask.Classification || r.TargetHitRate > r.DistractorHitRate;
        var amplifiable = r.PassG >= 0.25 && r.PassG >= r.Pass1 + 0.1;
        var signal = r.SignalShare >= 0.5;
        void Add(string finding, bool isAgainst) { findings.Add(finding); if (isAgainst) against.Add(finding); }
        if (r.PassG < 0.1)
            Add($"Only {P(r.PassG)} of the prompts get a right answer among {r.G} samples: GRPO has almost nothing to amplify. Teach the task first (SFT, a stronger base model) or make it easier.", true);
        else if (amplifiable)
            Add($"pass@{r.G} {r.PassG:F2} against sampled pass@1 {r.Pass1:F2}: right answers are sampled for many prompts but not yet preferred — what GRPO sharpens.", false);
        else if (r.Pass1 > 0.9)
            Add($"Sampled pass@1 is already {r.Pass1:F2}: little is left to gain from this reward.", false);
        else
            Add($"pass@{r.G} {r.PassG:F2} is close to pass@1 {r.Pass1:F2}: the samples of a prompt mostly agree, so groups rarely contrast a right and a wrong answer.", false);
        if (r.Task != VisualTask.Classification)
            Add(direction
                ? $"Targets are hit more often than distractors ({P(r.TargetHitRate)} against {P(r.DistractorHitRate)} of the answers): the reward points somewhere."
                : $"The model boxes distractors ({P(r.DistractorHitRate)} of the answers) as often as targets ({P(r.TargetHitRate)}): the reward has no direction, the rewarded answers are lucky picks.",
                !direction);
        Add(signal
            ? $"{P(r.SignalShare)} of the groups have rewards that differ (zero-std groups: {P(r.ZeroStdShare)})."
            : $"{P(r.ZeroStdShare)} of the groups have all-equal rewards and so zero advantages: raise G, the temperature, or the task's difficulty.",
            !signal);
        if (r.FormatFailureRate > 0.05)
            Add($"{P(r.FormatFailureRate)} of the answers break the format: the format reward has something to fix first.", false);
        var learnable = against.Count == 0;
        var verdict = learnable
            ? $"GRPO has signal on {P(r.SignalShare)} of prompts: pass@{r.G} {r.PassG:F2}, pass@1 {r.Pass1:F2}" + (amplifiable ? " — learnable." : " — learnable, with little room.")
            : $"Little for GRPO to learn: {against[0]}";
        return r with { Learnable = learnable, Verdict = verdict, Findings = findings };
    }

    /// <summary>Whether an answer hits a target, and whether it puts a box on a distractor.</summary>
    internal static (bool Target, bool Distractor) Look(string completion, VisualSample s, CoordinateFrame frame, ImageFrames frames, RewardPreset preset)
    {
        if (s.Task == VisualTask.Classification)
        {
            var name = Answers.ParseClassification(completion, preset).AnswerText;
            return (ClassificationMetrics.IsMatch(name, s.Category, ClassMatchRule.Exact), false);
        }
        IReadOnlyList<Box> boxes = s.Task == VisualTask.Detection
            ? [.. Answers.ParseDetection(completion, preset).Boxes.Select(b => b.Position)]
            : Answers.ParseGrounding(completion, preset).Box is { } one ? [one] : [];
        var pixels = boxes.Where(b => b.IsFinite).Select(b => frames.Convert(b, frame, CoordinateFrame.OriginalPixels)).ToList();
        static Box Px(PixelBox b) => new(b.X1, b.Y1, b.X2, b.Y2);
        // Grounding's target is Objects[0]; detection's targets are the objects of the queried category.
        var targets = s.Task == VisualTask.Grounding ? [s.Objects[0]] : s.Objects.Where(o => o.Category == s.Category).ToList();
        var distractors = s.Objects.Except(targets).ToList();
        bool Any(IEnumerable<SceneObject> objects) => pixels.Any(p => objects.Any(o => Box.IoU(p, Px(o.Box)) >= DetectionMatching.Threshold));
        return (Any(targets), Any(distractors));
    }
}
