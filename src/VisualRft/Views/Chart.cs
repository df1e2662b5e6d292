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
            // A trace type the loaded plotly.js lacks would draw nothing: the static SVG stays, naming what it leaves out.
            + "var P=window.Plotly,c=window.vrftTraces;if(!c||c.p!==P)c=window.vrftTraces={p:P,t:P.PlotSchema.get().traces};var t=c.t;"
            + "var f=" + figure.ToJson() + ";if(f.data.some(function(d){return !t[d.type||'scatter'];}))return;e.innerHTML='';window.Plotly.newPlot(e,f.data,f.layout,{displaylogo:false,displayModeBar:false,responsive:false});})();</script></div>";
    }

    /// <summary>A figure as a view of its own.</summary>
    public static View View(Figure figure) => new(VisualRft.Views.Html.Root(Html(figure), "figure"), FigureSvg.Render(figure), $"figure: {figure.Title}");
}
