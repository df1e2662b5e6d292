using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace VisualRft.Tests.Release;

/// <summary>The file-based app restores the package at the version this repository packs (CI runs it against that feed).</summary>
public class ExamplesTests
{
    [Fact]
    public void The_quickstart_app_asks_for_the_version_the_build_packs()
    {
        var props = XDocument.Load(Path.Combine(Golden.RepoRoot, "Directory.Build.props"));
        var version = props.Descendants("Version").Single().Value;
        var app = File.ReadAllText(Path.Combine(Golden.RepoRoot, "examples", "quickstart.cs"));
        var package = Regex.Match(app, @"^#:package VisualRft@(\S+)$", RegexOptions.Multiline);
        Assert.True(package.Success, "examples/quickstart.cs has no #:package VisualRft@<version> line");
        Assert.Equal(version, package.Groups[1].Value);
    }
}
