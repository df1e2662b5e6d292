using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.Formatting;
using VisualRft.Interactive;

namespace VisualRft.Interactive.Tests;

/// <summary>
/// The extension as a notebook meets it: an in-process composite kernel with the C# kernel (the ClockExtension test pattern),
/// the extension loaded from a cell, then every magic command with good and bad arguments and the formatters of the records.
/// One kernel and one set of variables per class: the cells build on each other like a notebook's.
/// </summary>
public sealed class KernelFixture : IDisposable
{
    public CompositeKernel Kernel { get; }

    public KernelFixture()
    {
        var csharp = new CSharpKernel().UseValueSharing();
        csharp.AddAssemblyReferences([
            typeof(VisualRftKernelExtension).Assembly.Location, typeof(VisualRft.Views.Render).Assembly.Location,
            typeof(TorchSharp.torch).Assembly.Location, typeof(SixLabors.ImageSharp.Image).Assembly.Location,
        ]);
        Kernel = new CompositeKernel { csharp };
        Kernel.DefaultKernelName = "csharp";
    }

    public async Task<KernelCommandResult> Submit(string code, CancellationToken cancel = default) =>
        await Kernel.SendAsync(new SubmitCode(code), cancel);

    public void Dispose()
    {
        Kernel.Dispose();
        Formatter.ResetToDefault();
    }
}

[CollectionDefinition("kernel", DisableParallelization = true)]
public class KernelCollection : ICollectionFixture<KernelFixture> { }

[Collection("kernel")]
public class KernelTests(KernelFixture fx)
{
    static string? Failure(KernelCommandResult r) => r.Events.OfType<CommandFailed>().FirstOrDefault()?.Message;

    static void Ok(KernelCommandResult r) => Assert.True(Failure(r) is null, Failure(r));

    static IEnumerable<string> Values(KernelCommandResult r, string mime) =>
        r.Events.OfType<DisplayEvent>().SelectMany(e => e.FormattedValues).Where(v => v.MimeType == mime).Select(v => v.Value);

    static string Html(KernelCommandResult r) => string.Concat(Values(r, HtmlFormatter.MimeType));

    /// <summary>The extension loaded from a cell, the usings, and (once) a dataset, the tiny policy and a trainer.</summary>
    async Task Setup()
    {
        Ok(await fx.Submit("VisualRft.Interactive.VisualRftKernelExtension.Load(Microsoft.DotNet.Interactive.KernelInvocationContext.Current.HandlingKernel.RootKernel);"));
        Ok(await fx.Submit("""
            using VisualRft.Data; using VisualRft.Grpo; using VisualRft.Rewards; using VisualRft.TinyModel; using VisualRft.Views;
            """));
        if (((CSharpKernel)fx.Kernel.FindKernelByName("csharp")!).TryGetValue<object>("trainer", out _)) return;
        Ok(await fx.Submit("""
            var data = SyntheticDatasets.Load("shapes-detection", shots: 1, testSize: 1);
            var policy = TinyQwen2Vl.Pretrained();
            var trainer = new GrpoTrainer(policy, data.Train, Rewards.Detection(), GrpoOptions.VisualRftPaper with { LearningRate = 1e-4, MaxCompletionLength = 64, GradientAccumulation = 1 }, totalSteps: 50);
            var group = trainer.Rollout(data.Train[0]);
            """));
    }

    async Task<int> StepsDone() => (int)(await fx.Submit("trainer.StepsDone")).Events.OfType<ReturnValueProduced>().Single().Value;

    [Fact]
    public async Task A_the_banner_names_the_version_backend_and_commands_and_brings_plotly_once()
    {
        var r = await fx.Submit("VisualRft.Interactive.VisualRftKernelExtension.Load(Microsoft.DotNet.Interactive.KernelInvocationContext.Current.HandlingKernel.RootKernel);");
        Ok(r);
        var html = Html(r);
        Assert.Contains("VisualRft.Interactive", html);
        Assert.Contains("libtorch 2.10.0", html);
        foreach (var (name, _) in MagicCommands.Usage) Assert.Contains(name, html);
        Assert.Contains("window.Plotly = Plotly", html);
        Assert.Contains("Magic commands", string.Concat(Values(r, PlainTextFormatter.MimeType)));
        Ok(await fx.Submit("VisualRft.Interactive.VisualRftKernelExtension.Load(Microsoft.DotNet.Interactive.KernelInvocationContext.Current.HandlingKernel.RootKernel);"));
    }

    [Fact]
    public async Task B_vrft_data_binds_a_dataset_and_shows_its_card_with_boxes()
    {
        await Setup();
        var r = await fx.Submit("#!vrft-data shapes-detection --shots 1 --test 1");
        Ok(r);
        var html = Html(r);
        Assert.Contains("C#: var data = SyntheticDatasets.Load(&quot;shapes-detection&quot;, shots: 1, testSize: 1);", html);
        Assert.Contains("<image href=\"data:image/png;base64,", html);
        Assert.Contains("class=\"vrft-box vrft-truth\"", html);
        var count = await fx.Submit("data.Train.Count");
        Assert.Equal(8, count.Events.OfType<ReturnValueProduced>().Single().Value);
        Ok(await fx.Submit("#!vrft-data shapes-classification --shots 1 --as cls"));
        Ok(await fx.Submit("cls.Train[0].Category"));
    }

    [Theory]
    [InlineData("#!vrft-data", "name a dataset")]
    [InlineData("#!vrft-data shapes-nothing", "unknown dataset 'shapes-nothing'")]
    [InlineData("#!vrft-data shapes-detection --shots many", "--shots must be a whole number ≥ 1, got 'many'")]
    [InlineData("#!vrft-data shapes-detection --shots 0", "--shots must be a whole number ≥ 1, got '0'")]
    [InlineData("#!vrft-data shapes-detection --as 3x", "--as 3x is not a C# variable name")]
    [InlineData("#!vrft-rollout --trainer nobody", "no C# variable 'nobody'")]
    [InlineData("#!vrft-train --steps 2 --trainer nobody", "no C# variable 'nobody'")]
    [InlineData("#!vrft-eval --policy nobody", "no C# variable 'nobody'")]
    public async Task C_bad_arguments_fail_the_cell_with_what_to_type(string line, string message)
    {
        await Setup();
        var r = await fx.Submit(line);
        var failure = Failure(r);
        Assert.NotNull(failure);
        Assert.Contains(message, failure);
        Ok(await fx.Submit("1 + 1"));   // the kernel stays usable
    }

    [Fact]
    public async Task D_vrft_rollout_samples_a_group_and_shows_boxes_cards_and_tokens()
    {
        await Setup();
        var r = await fx.Submit("#!vrft-rollout --sample 1 --tokens kl");
        Ok(r);
        var html = Html(r);
        Assert.Contains("C#: var group = trainer.Rollout(trainer.TrainSet[1]);", html);
        Assert.Contains("class=\"vrft-box vrft-truth\"", html);
        Assert.Contains("data-reward=", html);                    // one card per completion
        Assert.Equal(8, System.Text.RegularExpressions.Regex.Matches(html, "class=card data-index=").Count);
        Assert.Contains("coloured by the k3 KL", html);
        Assert.Contains("<span class=tok", html);
        Ok(await fx.Submit("group.Completions.Count"));
        var bad = await fx.Submit("#!vrft-rollout --sample 99");
        Assert.Contains("--sample 99 is past the 8 training prompts", Failure(bad));
        Assert.Contains("--tokens sideways", Failure(await fx.Submit("#!vrft-rollout --tokens sideways")));
    }

    [Fact]
    public async Task E_records_returned_by_cells_show_html_svg_and_one_line()
    {
        await Setup();
        foreach (var expression in new[] { "group", "group.Score()", "group.Score().Advantages()", "policy", "trainer", "data.Train[0]", "data" })
        {
            var r = await fx.Submit(expression);
            Ok(r);
            var value = r.Events.OfType<ReturnValueProduced>().Single();
            var mimes = value.FormattedValues.Select(v => v.MimeType).ToList();
            Assert.Equal([HtmlFormatter.MimeType, Formatters.Svg, PlainTextFormatter.MimeType], mimes);
            var text = value.FormattedValues.Single(v => v.MimeType == PlainTextFormatter.MimeType).Value;
            Assert.DoesNotContain("\n", text.Trim());
            Assert.True(text.Length < 300, $"{expression}: {text}");
            Assert.StartsWith("<svg", value.FormattedValues.Single(v => v.MimeType == Formatters.Svg).Value);
        }
    }

    [Fact]
    public async Task F_vrft_train_updates_a_dashboard_in_place_with_charts_and_their_fallback()
    {
        await Setup();
        var before = await StepsDone();
        var r = await fx.Submit("#!vrft-train --steps 2");
        Ok(r);
        Assert.Single(r.Events.OfType<DisplayedValueProduced>(), e => e.FormattedValues.Any(v => v.Value.Contains("vrft-dashboard")));
        var updates = r.Events.OfType<DisplayedValueUpdated>().ToList();
        Assert.Equal(2, updates.Count);
        var last = updates[^1].FormattedValues.Single(v => v.MimeType == HtmlFormatter.MimeType).Value;
        Assert.Contains($"<b>done</b>: step {before + 2} of 50", last);
        Assert.Contains("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"vrft-figure\"", last);   // the static chart
        Assert.Contains("window.Plotly.newPlot", last);                                             // and its interactive upgrade
        Assert.Contains("--steps must be a whole number ≥ 1, got '0'", Failure(await fx.Submit("#!vrft-train --steps 0")));
        Assert.Contains("say how many steps", Failure(await fx.Submit("#!vrft-train")));
    }

    [Fact]
    public async Task G_interrupting_vrft_train_lets_the_step_finish_and_leaves_the_trainer_usable()
    {
        await Setup();
        var before = await StepsDone();
        using var cancel = new CancellationTokenSource();
        using var _ = fx.Kernel.KernelEvents.Subscribe(e => { if (e is DisplayedValueUpdated) cancel.Cancel(); });
        try { await fx.Submit("#!vrft-train --steps 20", cancel.Token); }
        catch (OperationCanceledException) { }                // the kernel gives the cell up at once…
        // …while the step in flight finishes; until then the trainer says it is busy, then the next step runs.
        string? busy = null;
        for (int i = 0; i < 120; i++)
        {
            busy = Failure(await fx.Submit("trainer.Step().Metrics.Step"));
            if (busy is null) break;
            Assert.Contains("still inside another call", busy);
            await Task.Delay(250);
        }
        Assert.Null(busy);
        Assert.InRange(await StepsDone() - before, 2, 4);     // one or two trained steps, then the one just taken
    }

    [Fact]
    public async Task H_vrft_eval_reports_and_compares_with_a_delta_row()
    {
        await Setup();
        var first = await fx.Submit("#!vrft-eval --limit 2 --max-new-tokens 24 --label base");
        Ok(first);
        Assert.Contains("vrft-evaluation", Html(first));
        var second = await fx.Submit("#!vrft-eval --limit 2 --max-new-tokens 24");
        Ok(second);
        var html = Html(second);
        Assert.Contains("vrft-comparison", html);
        Assert.Contains("<i>Δ policy after", html);
        Ok(await fx.Submit("evaluations.Count"));
        Assert.Contains("--split val is not test or train", Failure(await fx.Submit("#!vrft-eval --split val")));
        var list = await fx.Submit("(System.Collections.Generic.IReadOnlyList<VisualRft.Evaluation.EvaluationReport>)evaluations");
        Assert.Contains("vrft-comparison", list.Events.OfType<ReturnValueProduced>().Single().FormattedValues.First().Value);
    }

    [Fact]
    public async Task I_the_READMEs_csharp_example_runs_as_notebook_cells()
    {
        await Setup();
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "README.md"))) dir = dir.Parent;
        var readme = File.ReadAllText(Path.Combine(dir!.FullName, "README.md"));
        var block = System.Text.RegularExpressions.Regex.Match(readme, "## From C#.*?```csharp\n(.*?)```", System.Text.RegularExpressions.RegexOptions.Singleline).Groups[1].Value;
        Assert.Contains("trainer.Train(steps: 20", block);
        var run = Path.Combine(Path.GetTempPath(), $"vrft-readme-{Guid.NewGuid():N}");
        // Each paragraph is a cell; fewer steps and a temporary run folder keep the test short and clean.
        foreach (var cell in block.Replace("steps: 20", "steps: 2").Replace("\"runs/demo\"", $"@\"{run}\"").Split("\n\n"))
            Ok(await fx.Submit(cell));
        Assert.True(File.Exists(Path.Combine(run, "episodes.jsonl")));
        Directory.Delete(run, recursive: true);
    }
}
