using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VisualRft.Views;

/// <summary>
/// A chart as plotly.js reads it: <c>{"data": [traces…], "layout": {…}}</c> (plotly's JSON schema), built with a few
/// helpers for the charts the views draw. Any plotly figure can be wrapped (<see cref="FromJson"/>), e.g. one made with
/// Plotly.NET, and every figure renders twice: interactively by plotly.js and statically by <see cref="FigureSvg"/>.
/// </summary>
public sealed class Figure
{
    public JsonArray Data { get; }
    public JsonObject Layout { get; }

    Figure(JsonArray data, JsonObject layout) { Data = data; Layout = layout; }

    /// <summary>An empty figure with a title, axis titles and the compact size the dashboards use.</summary>
    public Figure(string title, string? xTitle = null, string? yTitle = null, int width = 380, int height = 250)
        : this([], new JsonObject
        {
            ["title"] = new JsonObject { ["text"] = title, ["font"] = new JsonObject { ["size"] = 13 } },
            ["width"] = width,
            ["height"] = height,
            ["margin"] = new JsonObject { ["l"] = 50, ["r"] = 12, ["t"] = 34, ["b"] = 40 },
            ["font"] = new JsonObject { ["size"] = 11 },
            ["xaxis"] = new JsonObject { ["title"] = new JsonObject { ["text"] = xTitle ?? "" }, ["zeroline"] = false },
            ["yaxis"] = new JsonObject { ["title"] = new JsonObject { ["text"] = yTitle ?? "" }, ["zeroline"] = false },
            ["legend"] = new JsonObject { ["orientation"] = "h", ["y"] = -0.3, ["yanchor"] = "top" },
            ["showlegend"] = false,
        })
    { }

    static JsonArray Numbers(IEnumerable<double> values) => [.. values.Select(v => double.IsFinite(v) ? JsonValue.Create(v) : null)];

    /// <summary>A line (plotly scatter, mode lines); NaN values are gaps.</summary>
    public Figure Line(string name, IReadOnlyList<double> x, IReadOnlyList<double> y, string color, bool markers = false, string? dash = null)
    {
        var line = new JsonObject { ["color"] = color, ["width"] = 2 };
        if (dash is not null) line["dash"] = dash;
        Data.Add(new JsonObject
        {
            ["type"] = "scatter", ["mode"] = markers ? "lines+markers" : "lines", ["name"] = name,
            ["x"] = Numbers(x), ["y"] = Numbers(y), ["line"] = line, ["marker"] = new JsonObject { ["color"] = color, ["size"] = 5 },
        });
        if (Data.Count > 1) ShowLegend();
        return this;
    }

    /// <summary>Points without lines (plotly scatter, mode markers), e.g. one per seed.</summary>
    public Figure Points(string name, IReadOnlyList<double> x, IReadOnlyList<double> y, string color)
    {
        Data.Add(new JsonObject
        {
            ["type"] = "scatter", ["mode"] = "markers", ["name"] = name, ["x"] = Numbers(x), ["y"] = Numbers(y),
            ["marker"] = new JsonObject { ["color"] = color, ["size"] = 8 },
        });
        if (Data.Count > 1) ShowLegend();
        return this;
    }

    /// <summary>A shaded band between two curves (mean ± std): a hidden lower edge and an upper edge filled down to it.</summary>
    public Figure Band(string name, IReadOnlyList<double> x, IReadOnlyList<double> lower, IReadOnlyList<double> upper, string fill)
    {
        Data.Add(new JsonObject
        {
            ["type"] = "scatter", ["mode"] = "lines", ["name"] = name + " (lower)", ["x"] = Numbers(x), ["y"] = Numbers(lower),
            ["line"] = new JsonObject { ["width"] = 0, ["color"] = fill }, ["showlegend"] = false, ["hoverinfo"] = "skip",
        });
        Data.Add(new JsonObject
        {
            ["type"] = "scatter", ["mode"] = "lines", ["name"] = name, ["x"] = Numbers(x), ["y"] = Numbers(upper), ["fill"] = "tonexty",
            ["fillcolor"] = fill, ["line"] = new JsonObject { ["width"] = 0, ["color"] = fill }, ["showlegend"] = false, ["hoverinfo"] = "skip",
        });
        return this;
    }

    /// <summary>Bars (stacked with the figure's other bar traces when <paramref name="stack"/>).</summary>
    public Figure Bars(string name, IReadOnlyList<double> x, IReadOnlyList<double> y, string color, bool stack = true)
    {
        Data.Add(new JsonObject { ["type"] = "bar", ["name"] = name, ["x"] = Numbers(x), ["y"] = Numbers(y), ["marker"] = new JsonObject { ["color"] = color } });
        if (stack) Layout["barmode"] = "stack";
        if (Data.Count > 1) ShowLegend();
        return this;
    }

    /// <summary>A legend under the plot: the bottom margin grows to hold it below the axis title.</summary>
    void ShowLegend()
    {
        if (Layout["showlegend"]?.GetValue<bool>() == true) return;
        Layout["showlegend"] = true;
        ((JsonObject)Layout["margin"]!)["b"] = 80;
        Layout["height"] = (Layout["height"]?.GetValue<int>() ?? 250) + 30;
    }

    /// <summary>Fixes the y range (e.g. [0, 1] for a fraction).</summary>
    public Figure YRange(double min, double max)
    {
        ((JsonObject)Layout["yaxis"]!)["range"] = new JsonArray(min, max);
        return this;
    }

    /// <summary>The title, whether plotly's <c>{"text": …}</c> form or a bare string.</summary>
    public string Title => Layout["title"] is JsonObject t ? t["text"]?.GetValue<string>() ?? "" : Layout["title"]?.GetValue<string>() ?? "";

    static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.Default };

    /// <summary><c>{"data": …, "layout": …}</c>; safe to embed in a script element (&lt;, &gt; and &amp; are escaped).</summary>
    public string ToJson() => new JsonObject { ["data"] = Data.DeepClone(), ["layout"] = Layout.DeepClone() }.ToJsonString(Json);

    /// <summary>Wraps any plotly figure JSON (an object with "data" and optionally "layout").</summary>
    public static Figure FromJson(string json)
    {
        var node = JsonNode.Parse(json) as JsonObject ?? throw new ArgumentException("a plotly figure is a JSON object with \"data\" and \"layout\"");
        var data = node["data"] as JsonArray ?? throw new ArgumentException("the plotly figure has no \"data\" array");
        return new Figure((JsonArray)data.DeepClone(), (JsonObject?)node["layout"]?.DeepClone() ?? []);
    }
}
