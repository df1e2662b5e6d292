namespace VisualRft.Views;

/// <summary>
/// A figure in HTML: a container holding the static SVG, and a script that replaces it with the interactive plotly chart
/// when <c>window.Plotly</c> exists (the kernel extension defines it once per notebook; a report inlines it). Without
/// scripts, or before plotly.js loaded, the SVG stays.
/// </summary>
public static class Chart
{
    public static string Html(Figure figure)
    {
        var id = Views.Html.NewId("chart");
        return $"<div class=\"chart\"><div id=\"{id}\" class=\"vrft-plotly\">{FigureSvg.Render(figure)}</div>"
            + "<script type=\"text/javascript\">(function(){var e=document.getElementById('" + id + "');if(!e||!window.Plotly)return;"
            + "var f=" + figure.ToJson() + ";e.innerHTML='';window.Plotly.newPlot(e,f.data,f.layout,{displaylogo:false,displayModeBar:false,responsive:false});})();</script></div>";
    }

    /// <summary>A figure as a view of its own.</summary>
    public static View View(Figure figure) => new(VisualRft.Views.Html.Root(Html(figure), "figure"), FigureSvg.Render(figure), $"figure: {figure.Title}");
}
