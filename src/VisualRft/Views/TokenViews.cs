using System.Text;
using VisualRft.Grpo;
using static VisualRft.Views.Html;

namespace VisualRft.Views;

/// <summary>What colours a token in the token view.</summary>
public enum TokenColor
{
    /// <summary>log π(token) of the sampling policy: white when certain, red when unlikely.</summary>
    LogProb,
    /// <summary>log π_ref(token) of the frozen reference.</summary>
    RefLogProb,
    /// <summary>The k3 KL to the reference, the term β weighs: white at 0, purple at the group's largest.</summary>
    Kl,
    /// <summary>The completion's advantage, constant over its tokens: green above the group mean, red below.</summary>
    Advantage,
}

/// <summary>
/// Every completion token coloured by its log-prob, reference log-prob, KL or advantage, with the exact numbers on hover:
/// where a completion was uncertain, where it drifted from the reference, which tokens the update pushes up or down.
/// Padding after the end token is shown struck through (the loss mask excludes it).
/// </summary>
public static class TokenViews
{
    public static View Tokens(RolloutGroup r, TokenColor by = TokenColor.LogProb, AdvantageBatch? batch = null)
    {
        if (by == TokenColor.Advantage && batch is null) throw new ArgumentException("colouring by advantage needs the AdvantageBatch of this rollout", nameof(batch));
        if (by is TokenColor.RefLogProb or TokenColor.Kl && r.Completions.Any(c => c.Trace.RefLogProbs is null))
            throw new ArgumentException($"colouring by {by} needs reference log-probs, which this rollout has none of (β = 0)", nameof(by));
        var klMax = r.Completions.SelectMany(c => c.Trace.Kl ?? []).DefaultIfEmpty(0).Max();
        var advMax = batch?.Advantages.Where(float.IsFinite).Select(Math.Abs).DefaultIfEmpty(0).Max() ?? 0;
        var html = new StringBuilder($"<div class=muted>{Legend(by, klMax, advMax)}</div>");
        var lines = new List<(string Header, List<(string Text, string Color, bool Masked)> Tokens)>();
        for (int i = 0; i < r.Completions.Count; i++)
        {
            var c = r.Completions[i];
            var adv = batch?.Advantages[i];
            var header = $"prompt {c.Prompt + 1} · #{c.Index} · {c.Tokens} tokens" + (adv is { } a ? $" · A {Signed(a, 2)}" : "");
            html.Append($"<div style=\"margin:4px 0\"><div class=muted>{E(header)}</div><div>");
            var tokens = new List<(string, string, bool)>();
            var t = c.Trace;
            int pads = 0;
            for (int j = 0; j < t.Width; j++)
            {
                if (!t.Mask[j]) { pads++; continue; }
                var color = Color(by, t.LogProbs[j], t.RefLogProbs?[j], t.Kl?[j], adv, klMax, advMax);
                var tip = $"#{c.Index}·{j}: id {t.Ids[j]} {Quote(t.Texts[j])}  logp {N(t.LogProbs[j])} (p {N(Math.Exp(t.LogProbs[j]))})"
                    + (t.RefLogProbs is { } rl ? $"  ref {N(rl[j])}" : "") + (t.Kl is { } kl ? $"  KL {N(kl[j], 4)}" : "") + (adv is { } av ? $"  A {Signed(av, 3)}" : "");
                html.Append($"<span class=tok style=\"background:{color}\" title=\"{E(tip)}\">{E(Visible(t.Texts[j]))}</span>");
                tokens.Add((Visible(t.Texts[j]), color, false));
            }
            if (pads > 0)
            {
                html.Append($"<span class=\"tok masked\" title=\"{pads} padding tokens after the end token: masked out of the loss\">pad×{pads}</span>");
                tokens.Add(($"pad×{pads}", "#ffffff", true));
            }
            html.Append("</div></div>");
            lines.Add((header, tokens));
        }
        var text = $"tokens of a rollout coloured by {by}: {r.Completions.Count} completions, {r.GeneratedTokens} tokens";
        return new View(Root(html.ToString(), "tokens"), Svg(lines, Legend(by, klMax, advMax)), text);
    }

    static string Legend(TokenColor by, double klMax, double advMax) => by switch
    {
        TokenColor.LogProb => $"coloured by log π(token): <span class=swatch style=\"background:{Prob(0)}\"></span>p = 1 <span class=swatch style=\"background:{Prob(-2.5)}\"></span>p ≈ 0.08 <span class=swatch style=\"background:{Prob(-5)}\"></span>p ≤ 0.007; hover a token for its numbers",
        TokenColor.RefLogProb => $"coloured by log π_ref(token): <span class=swatch style=\"background:{Prob(0)}\"></span>p = 1 <span class=swatch style=\"background:{Prob(-5)}\"></span>p ≤ 0.007",
        TokenColor.Kl => $"coloured by the k3 KL to the reference: <span class=swatch style=\"background:{Kl(0, klMax)}\"></span>0 <span class=swatch style=\"background:{Kl(klMax, klMax)}\"></span>{klMax:0.##e0} (largest here)",
        _ => $"coloured by advantage: <span class=swatch style=\"background:{Adv(-advMax, advMax)}\"></span>{Signed(-advMax, 2)} <span class=swatch style=\"background:{Adv(advMax, advMax)}\"></span>{Signed(advMax, 2)}",
    };

    static string Color(TokenColor by, float logp, float? refLogp, float? kl, float? adv, double klMax, double advMax) => by switch
    {
        TokenColor.LogProb => Prob(logp),
        TokenColor.RefLogProb => Prob(refLogp ?? 0),
        TokenColor.Kl => Kl(kl ?? 0, klMax),
        _ => Adv(adv ?? 0, advMax),
    };

    static string Mix((int R, int G, int B) a, (int R, int G, int B) b, double t)
    {
        t = double.IsFinite(t) ? Math.Clamp(t, 0, 1) : 1;
        return $"#{(int)(a.R + (b.R - a.R) * t):x2}{(int)(a.G + (b.G - a.G) * t):x2}{(int)(a.B + (b.B - a.B) * t):x2}";
    }

    static readonly (int, int, int) White = (255, 255, 255);
    static string Prob(double logp) => Mix(White, (255, 120, 110), -logp / 5);
    static string Kl(double kl, double max) => Mix(White, (170, 120, 230), max > 0 ? kl / max : 0);
    static string Adv(double a, double max) => a >= 0 ? Mix(White, (110, 200, 120), max > 0 ? a / max : 0) : Mix(White, (255, 120, 110), max > 0 ? -a / max : 0);

    /// <summary>Whitespace made visible so that a token of spaces or a newline can be seen and hovered.</summary>
    static string Visible(string s)
    {
        var v = s.Replace("\n", "⏎").Replace("\t", "⇥");
        return v.Trim().Length == 0 ? v.Replace(" ", "·") : v;
    }

    static string Quote(string s) => "'" + s.Replace("\n", "\\n") + "'";

    /// <summary>The token view as SVG: monospace cells, wrapped at a fixed width.</summary>
    static string Svg(List<(string Header, List<(string Text, string Color, bool Masked)> Tokens)> lines, string legendHtml)
    {
        const double width = 860, cw = 7.2, lh = 17;
        var body = new StringBuilder();
        double y = 16;
        body.Append($"<text x=\"0\" y=\"{F(y)}\" fill=\"#656d76\">{E(System.Text.RegularExpressions.Regex.Replace(legendHtml, "<[^>]+>", " ").Replace("  ", " "))}</text>");
        foreach (var (header, tokens) in lines)
        {
            y += lh + 4;
            body.Append($"<text x=\"0\" y=\"{F(y)}\" fill=\"#656d76\">{E(header)}</text>");
            y += lh;
            double x = 0;
            foreach (var (text, color, masked) in tokens)
            {
                var w = Math.Max(1, text.Length) * cw;
                if (x + w > width) { x = 0; y += lh; }
                body.Append($"<rect x=\"{F(x)}\" y=\"{F(y - 12)}\" width=\"{F(w)}\" height=\"15\" fill=\"{color}\"/>")
                    .Append($"<text x=\"{F(x)}\" y=\"{F(y)}\" xml:space=\"preserve\"{(masked ? " fill=\"#8c959f\" text-decoration=\"line-through\"" : "")}>{E(text)}</text>");
                x += w;
            }
        }
        return $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{F(width)}\" height=\"{F(y + 8)}\" font-family=\"DejaVu Sans Mono,monospace\" font-size=\"12\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>{body}</svg>";
    }
}
