using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Directives;
using Microsoft.DotNet.Interactive.Formatting;
using VisualRft.Data;
using VisualRft.Evaluation;
using VisualRft.Grpo;
using VisualRft.Policy;
using VisualRft.Rewards;
using VisualRft.Views;

namespace VisualRft.Interactive;

/// <summary>
/// The magic commands. Each wraps one public C# call, binds its result to a C# variable, shows it, and prints the C# line
/// that does the same, so that a notebook can move from magics to code. Bad arguments fail the cell with what to type.
/// </summary>
public static class MagicCommands
{
    public sealed class DataCommand : KernelDirectiveCommand
    {
        public string? Dataset { get; set; }
        public string? Shots { get; set; }
        public string? Test { get; set; }
        public string? Seed { get; set; }
        public string? As { get; set; }
    }

    public sealed class RolloutCommand : KernelDirectiveCommand
    {
        public string? Sample { get; set; }
        public string? Trainer { get; set; }
        public string? As { get; set; }
        public string? Tokens { get; set; }
    }

    public sealed class TrainCommand : KernelDirectiveCommand
    {
        public string? Steps { get; set; }
        public string? Trainer { get; set; }
        public string? RunFolder { get; set; }
    }

    public sealed class EvalCommand : KernelDirectiveCommand
    {
        public string? Split { get; set; }
        public string? Label { get; set; }
        public string? Policy { get; set; }
        public string? Data { get; set; }
        public string? Limit { get; set; }
        public string? MaxNewTokens { get; set; }
    }

    public sealed class CheckCommand : KernelDirectiveCommand
    {
        public string? Policy { get; set; }
        public string? Data { get; set; }
        public string? Split { get; set; }
        public string? Limit { get; set; }
        public string? G { get; set; }
        public string? As { get; set; }
    }

    public static readonly IReadOnlyList<(string Name, string Usage)> Usage =
    [
        ("#!vrft-data", "#!vrft-data shapes-detection --shots 4 [--test 8] [--seed 1] [--as data]"),
        ("#!vrft-rollout", "#!vrft-rollout [--sample 0] [--trainer trainer] [--as group] [--tokens logprob|kl|reflogprob]"),
        ("#!vrft-train", "#!vrft-train --steps 20 [--trainer trainer] [--run-folder runs/demo]"),
        ("#!vrft-eval", "#!vrft-eval [--split test] [--label name] [--policy policy] [--data data] [--limit 32] [--max-new-tokens 128]"),
        ("#!vrft-check", "#!vrft-check [--policy policy] [--data data] [--split train] [--limit 32] [--g 8] [--as check]"),
    ];

    /// <summary>Adds the five commands to <paramref name="kernel"/> (the root kernel); they read and bind C# variables.</summary>
    public static void Add(Kernel kernel)
    {
        kernel.AddDirective<DataCommand>(new KernelActionDirective("#!vrft-data")
        {
            Description = "Loads a synthetic dataset of the paper's settings into a C# variable and shows its card. " + Usage[0].Usage,
            Parameters =
            [
                new KernelDirectiveParameter("--dataset", "dataset name, e.g. shapes-detection") { AllowImplicitName = true }.AddCompletions(() => SyntheticDatasets.Names),
                new KernelDirectiveParameter("--shots", "training images per category (the paper's k-shot)") { TypeHint = "number" },
                new KernelDirectiveParameter("--test", "held-out images per category") { TypeHint = "number" },
                new KernelDirectiveParameter("--seed", "data seed") { TypeHint = "number" },
                new KernelDirectiveParameter("--as", "C# variable to bind (default: data)"),
            ],
        }, (cmd, ctx) => Run(ctx, cmd, 0, async () =>
        {
            var name = cmd.Dataset ?? throw new UsageError($"name a dataset, e.g. {Usage[0].Usage}; datasets: {string.Join(", ", SyntheticDatasets.Names)}");
            if (!SyntheticDatasets.Names.Contains(name) && !name.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
                throw new UsageError($"unknown dataset '{name}'; datasets: {string.Join(", ", SyntheticDatasets.Names)} (or a path to a manifest .json)");
            int? shots = Count(cmd.Shots, "--shots", 0), test = Count(cmd.Test, "--test", 0), seed = Count(cmd.Seed, "--seed", 0, min: 0);
            var variable = Variable(cmd.As, "data", 0);
            var data = SyntheticDatasets.Load(name, shots, test, seed);
            await Bind(ctx, variable, data);
            Equivalent(ctx, $"var {variable} = SyntheticDatasets.Load(\"{name}\"{Arg("shots", shots)}{Arg("testSize", test)}{Arg("seed", seed)});");
            ctx.Display(data, HtmlFormatter.MimeType, PlainTextFormatter.MimeType);
        }));

        kernel.AddDirective<RolloutCommand>(new KernelActionDirective("#!vrft-rollout")
        {
            Description = "Samples G completions for one training prompt with the trainer and shows them over the ground truth. " + Usage[1].Usage,
            Parameters =
            [
                new KernelDirectiveParameter("--sample", "index into the trainer's training set (default 0)") { TypeHint = "number", AllowImplicitName = true },
                new KernelDirectiveParameter("--trainer", "C# variable holding the GrpoTrainer (default: trainer)"),
                new KernelDirectiveParameter("--as", "C# variable to bind (default: group)"),
                new KernelDirectiveParameter("--tokens", "also show the token view, coloured by logprob, reflogprob or kl").AddCompletions(() => ["logprob", "reflogprob", "kl"]),
            ],
        }, (cmd, ctx) => Run(ctx, cmd, 1, async () =>
        {
            var (name, trainer) = Get<GrpoTrainer>(ctx, cmd.Trainer, "trainer", 1,
                "var trainer = new GrpoTrainer(policy, data.Train, Rewards.Detection(), GrpoOptions.VisualRftPaper);");
            var index = Count(cmd.Sample, "--sample", 1, min: 0) ?? 0;
            if (index >= trainer.TrainSet.Count) throw new UsageError($"--sample {index} is past the {trainer.TrainSet.Count} training prompts (0 … {trainer.TrainSet.Count - 1})");
            TokenColor? tokens = cmd.Tokens?.ToLowerInvariant() switch
            {
                null => null, "logprob" => TokenColor.LogProb, "reflogprob" => TokenColor.RefLogProb, "kl" => TokenColor.Kl,
                var t => throw new UsageError($"--tokens {t} is not one of logprob, reflogprob, kl"),
            };
            var variable = Variable(cmd.As, "group", 1);
            var group = trainer.Rollout(trainer.TrainSet[index]);
            await Bind(ctx, variable, group);
            Equivalent(ctx, $"var {variable} = {name}.Rollout({name}.TrainSet[{index}]);");
            ctx.Display(group, HtmlFormatter.MimeType, PlainTextFormatter.MimeType);
            if (tokens is { } by) ctx.Display(Render.Tokens(group, by), HtmlFormatter.MimeType, PlainTextFormatter.MimeType);
        }));

        kernel.AddDirective<TrainCommand>(new KernelActionDirective("#!vrft-train")
        {
            Description = "Runs GRPO steps with a live dashboard; interrupting lets the step in flight finish. " + Usage[2].Usage,
            Parameters =
            [
                new KernelDirectiveParameter("--steps", "trainer steps to run") { TypeHint = "number", AllowImplicitName = true },
                new KernelDirectiveParameter("--trainer", "C# variable holding the GrpoTrainer (default: trainer)"),
                new KernelDirectiveParameter("--run-folder", "also append every step to RUN_FOLDER/episodes.jsonl"),
            ],
        }, (cmd, ctx) => Run(ctx, cmd, 2, () =>
        {
            var (name, trainer) = Get<GrpoTrainer>(ctx, cmd.Trainer, "trainer", 2,
                "var trainer = new GrpoTrainer(policy, data.Train, Rewards.Detection(), GrpoOptions.VisualRftPaper);");
            var steps = Count(cmd.Steps, "--steps", 2) ?? throw new UsageError($"say how many steps, e.g. {Usage[2].Usage}");
            if (trainer.StepsDone >= trainer.TotalSteps)
                throw new UsageError($"{name} has done all {trainer.TotalSteps} steps of its run; create a trainer with a larger totalSteps to go on");
            Equivalent(ctx, $"foreach (var episode in {name}.Train({steps}{(cmd.RunFolder is null ? "" : $", runFolder: @\"{cmd.RunFolder}\"")})) {{ … }}");
            var target = Math.Min(steps, trainer.TotalSteps - trainer.StepsDone);
            var metrics = new List<StepMetrics>(trainer.History.Select(e => e.Metrics));
            var clock = Stopwatch.StartNew();
            TrainingDashboard Dashboard(string state) => new(metrics, trainer.TotalSteps, target, clock.Elapsed, state);
            var shown = ctx.Display(Dashboard("starting"), HtmlFormatter.MimeType, PlainTextFormatter.MimeType);
            var first = metrics.Count;
            foreach (var episode in trainer.Train(steps, cmd.RunFolder, ctx.CancellationToken))
            {
                metrics.Add(episode.Metrics);
                shown.Update(Dashboard(metrics.Count - first < target ? "training" : "done"));
            }
            var ran = metrics.Count - first;
            if (ran < target) shown.Update(Dashboard($"interrupted after {ran} of {target} steps; the trainer is consistent — run the cell again to go on"));
            return Task.CompletedTask;
        }));

        kernel.AddDirective<EvalCommand>(new KernelActionDirective("#!vrft-eval")
        {
            Description = "Evaluates a policy on held-out samples (greedy, as the paper) and compares it with the earlier evaluations. " + Usage[3].Usage,
            Parameters =
            [
                new KernelDirectiveParameter("--split", "test (default) or train").AddCompletions(() => ["test", "train"]),
                new KernelDirectiveParameter("--label", "row label (default: the trainer's step, or 'policy')"),
                new KernelDirectiveParameter("--policy", "C# variable holding the VisionLanguagePolicy (default: policy)"),
                new KernelDirectiveParameter("--data", "C# variable holding the dataset (default: data)"),
                new KernelDirectiveParameter("--limit", "evaluate only the first N samples") { TypeHint = "number" },
                new KernelDirectiveParameter("--max-new-tokens", "answer length limit (default 128)") { TypeHint = "number" },
            ],
        }, (cmd, ctx) => Run(ctx, cmd, 3, async () =>
        {
            var (policyName, policy) = Get<VisionLanguagePolicy>(ctx, cmd.Policy, "policy", 3, "var policy = TinyQwen2Vl.Pretrained();");
            var (dataName, data) = Get<SyntheticDataset>(ctx, cmd.Data, "data", 3, "var data = SyntheticDatasets.Load(\"shapes-detection\", shots: 4);");
            var split = (cmd.Split ?? "test").ToLowerInvariant();
            if (split is not ("test" or "train")) throw new UsageError($"--split {cmd.Split} is not test or train");
            IReadOnlyList<VisualSample> samples = split == "test" ? data.Test : data.Train;
            if (Count(cmd.Limit, "--limit", 3) is { } limit) samples = [.. samples.Take(limit)];
            var maxNew = Count(cmd.MaxNewTokens, "--max-new-tokens", 3) ?? 128;
            var trainer = TryGet<GrpoTrainer>(ctx, "trainer");
            var reward = trainer is not null && trainer.Policy == policy ? trainer.Reward : TaskReward.Create(data.Manifest.Task);
            var label = cmd.Label ?? (trainer is not null && trainer.Policy == policy ? $"{policyName} after {trainer.StepsDone} GRPO steps" : policyName);
            Equivalent(ctx, $"var report = PolicyEvaluator.Evaluate({policyName}, {dataName}.{(split == "test" ? "Test" : "Train")}, reward, \"{label}\", maxNewTokens: {maxNew}); evaluations.Add(report);");
            var progress = ctx.Display(new View("<div class=vrft>evaluating…</div>", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>", "evaluating…"), HtmlFormatter.MimeType, PlainTextFormatter.MimeType);
            var report = PolicyEvaluator.Evaluate(policy, samples, reward, label, maxNew, progress: new Progress(done =>
                progress.Update(new View($"<div class=vrft>evaluating {WebUtility.HtmlEncode(label)}: {done} of {samples.Count} samples</div>",
                    "<svg xmlns=\"http://www.w3.org/2000/svg\"/>", $"evaluating {done}/{samples.Count}"))));
            var evaluations = TryGet<List<EvaluationReport>>(ctx, "evaluations") ?? [];
            evaluations.Add(report);
            await Bind(ctx, "evaluations", evaluations);
            progress.Update(report);
            if (evaluations.Count > 1) ctx.Display((IReadOnlyList<EvaluationReport>)evaluations, HtmlFormatter.MimeType, PlainTextFormatter.MimeType);
        }));
        kernel.AddDirective<CheckCommand>(new KernelActionDirective("#!vrft-check")
        {
            Description = "Before training: does GRPO have anything to learn from? Samples G answers per prompt and reports pass@1, pass@G, "
                + "zero-std groups, target vs distractor hits, format failures and a verdict. " + Usage[4].Usage,
            Parameters =
            [
                new KernelDirectiveParameter("--policy", "C# variable holding the VisionLanguagePolicy (default: policy)"),
                new KernelDirectiveParameter("--data", "C# variable holding the dataset (default: data)"),
                new KernelDirectiveParameter("--split", "train (default: the prompts GRPO will see) or test").AddCompletions(() => ["train", "test"]),
                new KernelDirectiveParameter("--limit", "check only the first N prompts") { TypeHint = "number" },
                new KernelDirectiveParameter("--g", "answers per prompt (default 8, the paper's G)") { TypeHint = "number" },
                new KernelDirectiveParameter("--as", "C# variable to bind (default: check)"),
            ],
        }, (cmd, ctx) => Run(ctx, cmd, 4, async () =>
        {
            var (policyName, policy) = Get<VisionLanguagePolicy>(ctx, cmd.Policy, "policy", 4, "var policy = TinyQwen2Vl.Pretrained();");
            var (dataName, data) = Get<SyntheticDataset>(ctx, cmd.Data, "data", 4, "var data = SyntheticDatasets.Load(\"shapes-detection\", shots: 4);");
            var split = (cmd.Split ?? "train").ToLowerInvariant();
            if (split is not ("test" or "train")) throw new UsageError($"--split {cmd.Split} is not train or test");
            IReadOnlyList<VisualSample> samples = split == "test" ? data.Test : data.Train;
            var limit = Count(cmd.Limit, "--limit", 4);
            if (limit is { } l) samples = [.. samples.Take(l)];
            var g = Count(cmd.G, "--g", 4, min: 2) ?? 8;
            var variable = Variable(cmd.As, "check", 4);
            var trainer = TryGet<GrpoTrainer>(ctx, "trainer");
            var reward = trainer is not null && trainer.Policy == policy ? trainer.Reward : TaskReward.Create(data.Manifest.Task);
            var source = $"{dataName}.{(split == "test" ? "Test" : "Train")}" + (limit is { } n ? $".Take({n}).ToList()" : "");
            Equivalent(ctx, $"var {variable} = Diagnostics.Learnability({policyName}, {source}, Rewards.For(VisualTask.{data.Manifest.Task}), g: {g});");
            var progress = ctx.Display(new View("<div class=vrft>sampling…</div>", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>", "sampling…"), HtmlFormatter.MimeType, PlainTextFormatter.MimeType);
            var report = Diagnostics.Learnability(policy, samples, reward, g, progress: new Progress(done =>
                progress.Update(new View($"<div class=vrft>sampling: {done} of {samples.Count * g} answers</div>", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>", $"sampling {done}/{samples.Count * g}"))));
            await Bind(ctx, variable, report);
            progress.Update(report);
        }));
    }

    /// <summary>Synchronous progress: the report is shown as it happens (Progress&lt;T&gt; would post to another thread).</summary>
    sealed class Progress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }

    /// <summary>A mistake in a magic command's arguments: the cell fails with this message and the usage line.</summary>
    sealed class UsageError(string message) : Exception(message);

    static async Task Run(KernelInvocationContext ctx, KernelCommand cmd, int usage, Func<Task> body)
    {
        try { await body(); }
        catch (UsageError e) { ctx.Fail(cmd, message: $"{Usage[usage].Name}: {e.Message}. Usage: {Usage[usage].Usage}"); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or InvalidDataException or FileNotFoundException or ObjectDisposedException)
        {
            ctx.Fail(cmd, message: $"{Usage[usage].Name}: {e.Message}");
        }
    }

    static int? Count(string? text, string option, int usage, int min = 1)
    {
        if (text is null) return null;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < min)
            throw new UsageError($"{option} must be a whole number ≥ {min}, got '{text}'");
        return n;
    }

    static string Variable(string? name, string fallback, int usage)
    {
        var v = name ?? fallback;
        if (!Microsoft.CodeAnalysis.CSharp.SyntaxFacts.IsValidIdentifier(v)) throw new UsageError($"--as {v} is not a C# variable name");
        return v;
    }

    static string Arg(string name, int? value) => value is { } v ? $", {name}: {v}" : "";

    static CSharpKernel CSharp(KernelInvocationContext ctx) =>
        (ctx.HandlingKernel as CSharpKernel ?? ctx.HandlingKernel.RootKernel.FindKernelByName("csharp") as CSharpKernel)
        ?? throw new InvalidOperationException("the VisualRft magic commands need the C# kernel");

    static T? TryGet<T>(KernelInvocationContext ctx, string name) where T : class =>
        CSharp(ctx).TryGetValue<object>(name, out var value) ? value as T : null;

    static (string Name, T Value) Get<T>(KernelInvocationContext ctx, string? name, string fallback, int usage, string example) where T : class
    {
        var n = name ?? fallback;
        if (!CSharp(ctx).TryGetValue<object>(n, out var value) || value is null)
            throw new UsageError($"no C# variable '{n}'; create one first, e.g. {example}" + (name is null ? $", or name yours with --{fallback}" : ""));
        return value is T t ? (n, t) : throw new UsageError($"'{n}' is a {value.GetType().Name}, not a {typeof(T).Name}");
    }

    static Task Bind(KernelInvocationContext ctx, string name, object value) => CSharp(ctx).SetValueAsync(name, value, value.GetType());

    /// <summary>The C# that does what the magic did, shown above its result.</summary>
    static void Equivalent(KernelInvocationContext ctx, string code) =>
        ctx.DisplayAs($"<div style=\"font-size:12px;color:#656d76;font-family:ui-monospace,Menlo,monospace\">C#: {WebUtility.HtmlEncode(code)}</div>", HtmlFormatter.MimeType);
}
