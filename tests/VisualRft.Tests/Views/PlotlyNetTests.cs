using System.Text.Json.Nodes;
using Newtonsoft.Json.Linq;
using Plotly.NET;
using VisualRft.Plotly;
using VisualRft.Views;
using Figure = VisualRft.Views.Figure;

namespace VisualRft.Tests.Views;

/// <summary>Plotly.NET interop, where Plotly.NET loads (this test host has FSharp.Core 10.1).</summary>
public class PlotlyNetTests
{
    [Fact]
    public void A_PlotlyNET_chart_is_drawn_by_the_views_offline_and_statically()
    {
        var trace = new Trace("scatter");
        trace.SetProperty("x", new[] { 1, 2, 3 });
        trace.SetProperty("y", new[] { 2.0, 1.0, 3.0 });
        trace.SetProperty("mode", "lines");
        trace.SetProperty("name", "from Plotly.NET");
        var chart = GenericChart.ofTraceObject(true, trace);
        var view = chart.ToView();
        Assert.Contains("window.Plotly.newPlot", view.Html);
        Assert.Contains("class=\"vrft-line\"", view.Svg);
        Assert.Equal([2.0, 1.0, 3.0], chart.ToFigure().Data[0]!["y"]!.AsArray().Select(v => v!.GetValue<double>()));
        Assert.DoesNotContain("cdn.plot.ly", view.Html);
    }

    [Fact]
    public void The_packages_figures_become_PlotlyNET_charts_and_come_back_unchanged()
    {
        var figure = new Figure("reward", "step").Band("r", [1, 2], [0, 1], [1, 2], "rgba(0,0,0,0.1)").Line("mean", [1, 2], [0.5, 1.5], "#0969da")
            .Bars("time", [1, 2], [3, 4], "#bf8700");
        var chart = figure.ToPlotlyNet();
        Assert.Equal(4, GenericChart.countTrace(chart));
        var back = chart.ToFigure();
        Assert.True(JsonNode.DeepEquals(figure.Data, back.Data), back.ToJson());
        foreach (var (key, value) in figure.Layout) Assert.True(JsonNode.DeepEquals(value, back.Layout[key]), key);
        // styled further with Plotly.NET, still drawn by the views
        var styled = GenericChart.mapLayout(Microsoft.FSharp.Core.FuncConvert.FromFunc<Layout, Layout>(l => { l.SetProperty("paper_bgcolor", JToken.FromObject("#fafafa")); return l; }), chart);
        Assert.Contains("#fafafa", styled.ToFigure().ToJson());
    }
}
