using VisualRft.Experiments;
using Xunit.Abstractions;

namespace VisualRft.Tests.Experiments;

/// <summary>
/// The tiny-scale table runners end to end. The default run has the lightest (Table 6, a few steps on a few images);
/// the full-size runs, whose rows the report quotes, are heavy.
/// </summary>
public class TinyTablesTests(ITestOutputHelper output)
{
    static readonly TinyTableOptions Smoke = new() { RftSteps = 2, SftSteps = 2, Shots = 8, TestPerCategory = 1, EvalMaxNewTokens = 24 };

    static void CheckShape(TableComparison t)
    {
        Assert.Equal(t.Paper.Columns.Count, t.Columns.Count);
        Assert.Contains(t.Measured, r => r.Kind == RowKind.Baseline);
        Assert.Contains(t.Measured, r => r.Kind == RowKind.Sft);
        Assert.Contains(t.Measured, r => r.Kind == RowKind.VisualRft);
        foreach (var r in t.Measured)
        {
            Assert.Equal(t.Columns.Count, r.Values.Count);
            Assert.All(r.Values, v => Assert.True(v is { } x && double.IsFinite(x), $"{r.Model}: {string.Join(", ", r.Values)}"));
        }
        var delta = t.Row(RowKind.Delta).Values;
        for (int c = 0; c < t.Columns.Count; c++)
            Assert.Equal(t.Row(RowKind.VisualRft).Values[c]!.Value - t.Row(RowKind.Baseline).Values[c]!.Value, delta[c]!.Value, 9);
        Assert.NotEmpty(t.PaperRows);
        Assert.Contains("steps", t.Settings["Visual-RFT"]);
    }

    [Fact]
    public void Table6_grounding_runs_end_to_end()
    {
        var t = TinyTables.Table6(Smoke);
        output.WriteLine(t.ToMarkdown());
        CheckShape(t);
        Assert.All(t.Measured.Where(r => r.Kind != RowKind.Delta).SelectMany(r => r.Values), v => Assert.InRange(v!.Value, 0, 100));
        Assert.Equal(4, t.PaperRows.Count);   // 2B baseline, +SFT, +Visual-RFT, Δ
    }

    /// <summary>Full tiny-scale runs (minutes each on 2 cores): the measured rows of the report.</summary>
    [Theory, Trait("Category", "Heavy")]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void Tiny_table_at_full_size(int number)
    {
        var t = TinyTables.Run(number, log: output.WriteLine);
        output.WriteLine(t.ToMarkdown());
        CheckShape(t);
        Write(t);
    }

    [Fact, Trait("Category", "Heavy")]
    public void Tables_7_and_8_share_one_open_vocabulary_run()
    {
        var (t7, t8) = TinyTables.OpenVocabulary(log: output.WriteLine);
        foreach (var t in new[] { t7, t8 })
        {
            output.WriteLine(t.ToMarkdown());
            CheckShape(t);
            Write(t);
        }
    }

    /// <summary>VRFT_TABLES_OUT=folder keeps each measured table as Markdown.</summary>
    static void Write(TableComparison t)
    {
        if (Environment.GetEnvironmentVariable("VRFT_TABLES_OUT") is { Length: > 0 } dir)
        {
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, $"table{t.Paper.Number}.md"), t.ToMarkdown());
        }
    }
}
