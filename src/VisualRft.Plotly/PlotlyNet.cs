using System.Text.Json.Nodes;
using Microsoft.FSharp.Collections;
using Newtonsoft.Json.Linq;
using Plotly.NET;
using VisualRft.Views;
using Figure = VisualRft.Views.Figure;

namespace VisualRft.Plotly;

/// <summary>
/// Both ways between the package's figures and Plotly.NET charts. Both speak plotly's JSON schema, so the conversion
/// is the JSON itself: a Plotly.NET chart becomes a <see cref="Figure"/> that every view draws (interactively and as
/// static SVG, offline); a figure becomes a <see cref="GenericChart"/> for users who style it further with Plotly.NET.
/// </summary>
public static class PlotlyNet
{
    /// <summary>A Plotly.NET chart as a figure (its traces and layout, as <c>GenericChart.toFigureJson</c> writes them).</summary>
    public static Figure ToFigure(this GenericChart chart) => Figure.FromJson(GenericChart.toFigureJson(chart));

    /// <summary>A figure as a Plotly.NET chart: each trace and the layout carry the figure's JSON properties.</summary>
    public static GenericChart ToPlotlyNet(this Figure figure)
    {
        var traces = figure.Data.OfType<JsonObject>().Select(t =>
        {
            var trace = new Trace(t["type"]?.GetValue<string>() ?? "scatter");
            foreach (var (key, value) in t) if (key != "type" && value is not null) trace.SetProperty(key, JToken.Parse(value.ToJsonString()));
            return trace;
        });
        var layout = new Layout();
        foreach (var (key, value) in figure.Layout) if (value is not null) layout.SetProperty(key, JToken.Parse(value.ToJsonString()));
        return GenericChart.NewMultiChart(ListModule.OfSeq(traces), layout, new Config(), new DisplayOptions());
    }

    /// <summary>A Plotly.NET chart's view: drawn by the package's plotly.js (offline) with a static SVG beside it.</summary>
    public static View ToView(this GenericChart chart) => Render.Of(chart.ToFigure());
}
