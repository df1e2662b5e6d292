using VisualRft.Rewards.Parsing;

namespace VisualRft.Tests.Rewards;

/// <summary>The tiny reader agrees with CPython's json.loads on the inputs the rewards meet.</summary>
public class PyJsonTests
{
    [Theory]
    [InlineData("[1, 2.5, -0, 1e2, true, null, \"a\"]", "[1, 2.5, 0, 100, True, None, 'a']")]
    [InlineData("[NaN, Infinity, -Infinity]", "[NaN, Infinity, -Infinity]")]
    [InlineData(" {\"a\": 1, \"a\": 2} ", "{'a': 2}")]
    [InlineData("[\"\\u00e9\\n\"]", "['é\n']")]
    [InlineData("[[[]]]", "[[[]]]")]
    public void Accepts(string json, string expected)
    {
        Assert.True(PyJson.TryLoads(json, out var v, out var error), error);
        Assert.Equal(expected, v.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("[1,]")]
    [InlineData("[01]")]
    [InlineData("[1.]")]
    [InlineData("['a']")]
    [InlineData("[\"a\tb\"]")]
    [InlineData("[nan]")]
    [InlineData("[1] x")]
    [InlineData("{\"a\" 1}")]
    [InlineData("[\"\\x\"]")]
    [InlineData("\ufeff[]")]
    public void RejectsLikePython(string json) => Assert.False(PyJson.TryLoads(json, out _, out _));

    [Fact]
    public void TellsIntsFromFloatsAndStopsAtTheDepthLimit()
    {
        Assert.True(PyJson.TryLoads("[1, 1.0, 1e0]", out var v, out _));
        Assert.Equal(["int", "float", "float"], v.Items.Select(i => i.TypeName));
        Assert.False(PyJson.TryLoads(new string('[', 2000) + new string(']', 2000), out _, out var error));
        Assert.Contains("recursion", error);
    }
}
