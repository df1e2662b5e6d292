using System.Text.RegularExpressions;
using CsCheck;
using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;

namespace VisualRft.Tests.Rewards;

/// <summary>
/// The linear-time readers give exactly what the code they replaced gave: the official regexes (kept here as the
/// oracle) for the answer search and the format check, and binary insertion on an array for Python's sort with NaN keys.
/// </summary>
public class LinearParserEquivalenceTests
{
    const long Iterations = 3000;

    static readonly string[] Pieces = ["<answer>", "</answer>", "<think>", "</think>", "<answer", "</", ">", "\n", " ", "\x1c", "\u2003", "x", "ab"];

    static readonly Gen<string> Soup = Gen.OneOf(Pieces).Array[0, 16].Select(string.Concat);

    static readonly Regex AnswerSingleLine = new("<answer>(.*?)</answer>", RegexOptions.CultureInvariant);
    static readonly Regex AnswerDotAll = new("<answer>(.*?)</answer>", RegexOptions.CultureInvariant | RegexOptions.Singleline);
    static readonly Regex OfficialFormat = new(@"\A<think>.*?</think>" + PyText.Space + @"*<answer>.*?</answer>\z", RegexOptions.CultureInvariant | RegexOptions.Singleline);
    static readonly Regex StrictFormat = new(@"\A<think>(?:(?!</?think>|</?answer>).)*</think>" + PyText.Space + @"*<answer>(?:(?!</?think>|</?answer>).)*</answer>\z",
        RegexOptions.CultureInvariant | RegexOptions.Singleline);

    [Fact]
    public void The_answer_search_equals_the_official_regex() => Soup.Sample(text =>
    {
        foreach (var (regex, dotAll) in new[] { (AnswerSingleLine, false), (AnswerDotAll, true) })
        {
            var m = regex.Match(text);
            bool found = Answers.TrySearchAnswer(text, dotAll, out int start, out int length);
            Assert.Equal(m.Success, found);
            if (found) Assert.Equal((m.Groups[1].Index, m.Groups[1].Length), (start, length));
        }
    }, iter: Iterations, threads: 1);

    [Fact]
    public void The_format_check_equals_the_regexes() => Soup.Sample(text =>
    {
        Assert.Equal(OfficialFormat.IsMatch(text), Answers.HasFormat(text, RewardPreset.VisualRft));
        Assert.Equal(StrictFormat.IsMatch(PyText.Strip(text)), Answers.HasFormat(text, RewardPreset.Strict));
    }, iter: Iterations, threads: 1);

    /// <summary>The array form of count_run + binary insertion that the sequence version replaced.</summary>
    static int[] ArrayBinaryInsertion(double[] keys)
    {
        int n = keys.Length;
        var idx = Enumerable.Range(0, n).Reverse().ToArray();
        var k = idx.Select(i => keys[i]).ToArray();
        if (n > 1)
        {
            int run = 2;
            if (k[1] < k[0])
            {
                while (run < n && k[run] < k[run - 1]) run++;
                Array.Reverse(k, 0, run);
                Array.Reverse(idx, 0, run);
            }
            else
                while (run < n && !(k[run] < k[run - 1])) run++;
            for (int start = run; start < n; start++)
            {
                double pivot = k[start];
                int pivotIdx = idx[start], l = 0, r = start;
                do
                {
                    int p = l + ((r - l) >> 1);
                    if (pivot < k[p]) r = p; else l = p + 1;
                } while (l < r);
                Array.Copy(k, l, k, l + 1, start - l);
                Array.Copy(idx, l, idx, l + 1, start - l);
                k[l] = pivot;
                idx[l] = pivotIdx;
            }
        }
        Array.Reverse(idx);
        return idx;
    }

    [Fact]
    public void The_sort_equals_binary_insertion_with_and_without_nan() =>
        Gen.OneOf(Gen.Const(double.NaN), Gen.Const(0.5), Gen.Const(-0.0), Gen.Const(0.0), Gen.Double[-2, 2], Gen.Int[0, 3].Select(i => (double)i))
            .Array[0, 200].Sample(keys => Assert.Equal(ArrayBinaryInsertion(keys), PySort.SortedIndicesDescending(keys)), iter: Iterations, threads: 1);
}
