using Microsoft.DotNet.Interactive.Formatting;
using VisualRft.Views;

namespace VisualRft.Interactive;

/// <summary>
/// Every record's view (VisualRft.Views.Render) as the kernel's formatter: text/html for notebooks, image/svg+xml for
/// viewers that show no HTML, and one text/plain line instead of an object dump.
/// </summary>
public static class Formatters
{
    public const string Svg = "image/svg+xml";

    /// <summary>The types with a view (<see cref="Render.Types"/>) and a view itself. Lists register by interface: a
    /// <c>List&lt;EvaluationReport&gt;</c> shows as a table.</summary>
    public static readonly Type[] Types = [.. Render.Types, typeof(View)];

    public static void Register()
    {
        foreach (var type in Types)
        {
            Formatter.Register(type, (value, writer) => writer.Write(ViewOf(value).Html), HtmlFormatter.MimeType);
            Formatter.Register(type, (value, writer) => writer.Write(ViewOf(value).Svg), Svg);
            Formatter.Register(type, (value, writer) => writer.Write(ViewOf(value).Text), PlainTextFormatter.MimeType);
            Formatter.SetPreferredMimeTypesFor(type, HtmlFormatter.MimeType, Svg, PlainTextFormatter.MimeType);
        }
    }

    /// <summary>The view of a value (a <see cref="View"/> is its own view); the last one is kept, since a display asks for
    /// three MIME types of the same value in a row.</summary>
    static View ViewOf(object value)
    {
        if (value is View v) return v;
        lock (Last)
        {
            if (Last.TryGetTarget(out var cached) && ReferenceEquals(cached.Value, value)) return cached.View;
            var view = Render.Any(value) ?? throw new InvalidOperationException($"no view for {value.GetType()}");
            Last.SetTarget(new Cached(value, view));
            return view;
        }
    }

    sealed record Cached(object Value, View View);
    static readonly WeakReference<Cached> Last = new(new Cached(new object(), new View("", "", "")));
}
