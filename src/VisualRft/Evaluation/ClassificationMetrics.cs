namespace VisualRft.Evaluation;

/// <summary>How a predicted class name is compared with the label.</summary>
public enum ClassMatchRule
{
    /// <summary>
    /// The paper's rule (visual-rft-spec.md §4.8, §6.1): remove spaces and underscores, lower-case, then right iff either
    /// string contains the other. Lenient by design of the original (an empty answer counts as right).
    /// </summary>
    PaperSubstring,

    /// <summary>Equal after the same normalisation; an empty answer is wrong.</summary>
    Exact,
}

/// <summary>Classification accuracy over extracted answers (the text inside &lt;answer&gt;; null = no answer found = wrong).</summary>
public static class ClassificationMetrics
{
    public static bool IsMatch(string? answer, string label, ClassMatchRule rule = ClassMatchRule.PaperSubstring)
    {
        if (answer is null) return false;
        string a = Normalise(answer), g = Normalise(label);
        return rule switch
        {
            ClassMatchRule.PaperSubstring => g.Contains(a, StringComparison.Ordinal) || a.Contains(g, StringComparison.Ordinal),
            _ => a.Length > 0 && a == g,
        };
    }

    /// <summary>Fraction of right answers, in [0, 1] (the paper prints ×100).</summary>
    public static double Accuracy(IReadOnlyList<string?> answers, IReadOnlyList<string> labels, ClassMatchRule rule = ClassMatchRule.PaperSubstring)
    {
        if (answers.Count != labels.Count) throw new ArgumentException($"{answers.Count} answers for {labels.Count} labels", nameof(answers));
        if (labels.Count == 0) throw new ArgumentException("accuracy of an empty set is undefined", nameof(labels));
        return (double)answers.Zip(labels).Count(p => IsMatch(p.First, p.Second, rule)) / labels.Count;
    }

    /// <summary>§4.8 step 4: strip, drop spaces and underscores, lower-case (hyphens and other punctuation stay).</summary>
    public static string Normalise(string s) => s.Trim().Replace(" ", "").Replace("_", "").ToLowerInvariant();
}
