using System.Text.Json;
using System.Text.Json.Nodes;
using VisualRft.IO;

namespace VisualRft.Tests.IO;

public class JsonFieldsTests
{
    static JsonFields Read(string json, bool comments = false) => JsonFields.Parse(json, "config.json", comments);

    static string Refusal(Action read) => Assert.Throws<InvalidDataException>(read).Message;

    [Theory]
    [InlineData("""{"a": 1, "a": 2}""", "config.json: key 'a' is given twice")]
    [InlineData("""{"vision_config": {"depth": 1, "width": 2, "depth": 3}}""", "config.json: key 'vision_config.depth' is given twice")]
    [InlineData("""{"added_tokens": [{"id": 1}, {"id": 2, "id": 3}]}""", "config.json: key 'added_tokens[1].id' is given twice")]
    public void A_key_given_twice_is_refused_with_its_path(string json, string message) => Assert.Equal(message, Refusal(() => Read(json)));

    [Fact]
    public void The_same_key_in_different_objects_is_not_a_duplicate()
    {
        var f = Read("""{"hidden_size": 64, "vision_config": {"hidden_size": 32}}""");
        Assert.Equal(64, f.Int("hidden_size"));
        Assert.Equal(32, f.Obj("vision_config").Int("hidden_size"));
    }

    [Theory]
    [InlineData("""{"vision_config": {"depth": "x"}}""", "config.json: key 'vision_config.depth' must be an integer, got \"x\"")]
    [InlineData("""{"vision_config": {"depth": 2.5}}""", "config.json: key 'vision_config.depth' must be an integer, got 2.5")]
    [InlineData("""{"vision_config": {"depth": 1e12}}""", "config.json: key 'vision_config.depth' must be an integer between -2,147,483,648 and 2,147,483,647, got 1e12")]
    [InlineData("""{"vision_config": {"depth": true}}""", "config.json: key 'vision_config.depth' must be an integer, got true")]
    [InlineData("""{"vision_config": 7}""", "config.json: key 'vision_config' must be an object, got 7")]
    [InlineData("""{"vision_config": {}}""", "config.json: key 'vision_config.depth' is missing")]
    [InlineData("""{"vision_config": {"depth": null}}""", "config.json: key 'vision_config.depth' is null, where a value is needed")]
    [InlineData("""{}""", "config.json: key 'vision_config' is missing")]
    public void Wrong_and_missing_values_name_the_file_the_path_and_what_was_found(string json, string message) =>
        Assert.Equal(message, Refusal(() => Read(json).Obj("vision_config").Int("depth")));

    [Fact]
    public void Each_type_says_what_it_expects()
    {
        var f = Read("""{"n": "1", "s": 5, "e": "", "b": "yes", "o": [1]}""");
        Assert.Equal("config.json: key 'n' must be a number, got \"1\"", Refusal(() => f.Double("n")));
        Assert.Equal("config.json: key 's' must be a string, got 5", Refusal(() => f.Str("s")));
        Assert.Equal("", f.Str("e"));
        Assert.Equal("config.json: key 'e' must be a non-empty string, got \"\"", Refusal(() => f.Str("e", nonEmpty: true)));
        Assert.Equal("config.json: key 'b' must be true or false, got \"yes\"", Refusal(() => f.Bool("b", false)));
        Assert.Equal("config.json: key 'o' must be an object, got [1]", Refusal(() => f.ObjOrNull("o")));
        Assert.Equal("config.json: key 'n' must be an array of integers, got \"1\"", Refusal(() => f.Ints("n")));
        Assert.Equal("config.json: key 'o' must be a string or an object, got [1]", f.Wrong("o", "a string or an object").Message);
    }

    [Fact]
    public void Optional_keys_give_their_default_when_absent_or_null_and_are_still_checked_when_given()
    {
        var f = Read("""{"theta": 10000, "eps": null, "act": "silu", "tie": false, "whole": 4.0}""");
        Assert.Equal(10000.0, f.Double("theta", 1e6));
        Assert.Equal(1e-6, f.Double("eps", 1e-6));
        Assert.Equal(1e-6, f.Double("absent", 1e-6));
        Assert.Equal("silu", f.Str("act", "quick_gelu"));
        Assert.Null(f.Str("absent", null));
        Assert.False(f.Bool("tie", true));
        Assert.Equal(7, f.Int("absent", 7));
        Assert.Equal(4, f.Int("whole", 7));                            // some exporters write integers as floats
        Assert.Null(f.ObjOrNull("eps"));
        Assert.Empty(f.Objs("absent"));
        Assert.Empty(f.Entries("eps"));
        Assert.Equal("config.json: key 'act' must be an integer, got \"silu\"", Refusal(() => f.Int("act", 7)));
        Assert.True(f.Has("theta"));
        Assert.False(f.Has("eps"));
        Assert.Equal(JsonValueKind.Null, f.Kind("eps"));
        Assert.Equal(JsonValueKind.Undefined, f.Kind("absent"));
        Assert.Equal(["theta", "eps", "act", "tie", "whole"], f.Keys);
    }

    [Fact]
    public void Lists_name_the_entry_that_is_wrong()
    {
        var f = Read("""{"rope_scaling": {"mrope_section": [16, "a", 24]}, "side": [0.25, 0.5], "names": ["red", ""], "big": [1, 2, 3]}""");
        var rope = f.Obj("rope_scaling");
        Assert.Equal("config.json: key 'rope_scaling.mrope_section[1]' must be an integer, got \"a\"", Refusal(() => rope.Ints("mrope_section")));
        Assert.Equal([0.25, 0.5], f.Doubles("side"));
        Assert.Equal(["red", ""], f.Strs("names"));
        Assert.Equal("config.json: key 'names[1]' must be a non-empty string, got \"\"", Refusal(() => f.Strs("names", nonEmpty: true)));
        Assert.Equal([1, 2, 3], f.Ints("big", maxCount: 3));
        Assert.Equal("config.json: key 'big' has 3 entries, more than 2", Refusal(() => f.Ints("big", maxCount: 2)));
        Assert.Equal("config.json: key 'side[0]' must be an integer, got 0.25", Refusal(() => f.Ints("side")));
    }

    [Fact]
    public void Objects_in_arrays_and_nested_objects_read_with_their_paths()
    {
        var f = Read("""{"added_tokens": [{"id": 1, "content": "a"}, {"id": "2"}], "pre": {"list": [{"type": "Split"}, 3, {"inner": {"type": "ByteLevel"}}]}}""");
        var tokens = f.Objs("added_tokens");
        Assert.Equal("added_tokens[1]", tokens[1].Path);
        Assert.Equal("config.json: key 'added_tokens[1].id' must be an integer, got \"2\"", Refusal(() => tokens[1].Int("id")));
        Assert.Equal(["pre", "pre.list[0]", "pre.list[2]", "pre.list[2].inner"], f.Obj("pre").SelfAndDescendants().Select(d => d.Path));
        Assert.Equal("config.json: key 'pre.list[1]' must be an object, got 3", Refusal(() => f.Obj("pre").Objs("list")));
        Assert.Equal("""{"id":1,"content":"a"}""", tokens[0].ToString());
    }

    [Fact]
    public void OneOf_and_OnlyKeys_list_what_is_known()
    {
        var f = Read("""{"task": "segmentation", "colour": 3}""");
        var tasks = new Dictionary<string, int> { ["detection"] = 1, ["grounding"] = 2 };
        Assert.Equal("config.json: key 'task' unknown value 'segmentation' (known: detection, grounding)", Refusal(() => f.OneOf("task", tasks)));
        Assert.Equal("config.json: key 'colour' unknown key (known: task, seed)", Refusal(() => f.OnlyKeys("task", "seed")));
        f.OnlyKeys("task", "colour");
    }

    [Fact]
    public void Input_that_is_not_one_object_is_refused()
    {
        Assert.StartsWith("config.json: not valid JSON: ", Refusal(() => Read("""{"model_type": """)));
        Assert.Equal("config.json: the top level is not a JSON object", Refusal(() => Read("[1, 2]")));
        const string commented = """
            // a hand-written manifest
            { "seed": 1 /* the root of every stream */ }
            """;
        Assert.StartsWith("config.json: not valid JSON: ", Refusal(() => Read(commented)));
        Assert.Equal(1, Read(commented, comments: true).Int("seed"));
    }

    [Fact]
    public void Files_over_the_bound_are_refused_before_they_are_read()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vrft-json-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(path, """{"x": "abcdefghij"}""");
            Assert.Equal("abcdefghij", JsonFields.Load(path, 64, "config file").Str("x"));
            Assert.Equal(path, JsonFields.Load(path, 64, "config file").Source);
            Assert.Equal($"{path}: more than 16 bytes (19), too large for the config file", Refusal(() => JsonFields.Load(path, 16, "config file")));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Long_keys_and_values_are_quoted_short()
    {
        var key = new string('k', 100_000);
        var f = Read($$"""{"{{key}}": "{{new string('v', 100_000)}}"}""");
        var message = Refusal(() => f.Int(key));
        Assert.True(message.Length < 300, $"{message.Length} characters");
        Assert.Contains("must be an integer, got \"vvv", message);
    }

    [Fact]
    public void Objects_built_in_code_read_the_same_way()
    {
        var o = new JsonObject { ["layers"] = 4, ["big"] = 1_000_000_000_000L, ["theta"] = 1e6, ["eps"] = 1e-6f, ["section"] = new JsonArray(2, 3, 3) };
        var f = JsonFields.Of(o, "in code");
        Assert.Equal(4, f.Int("layers"));
        Assert.Equal(1e6, f.Double("theta"));
        Assert.Equal(1e-6, f.Double("eps"), 1e-12);
        Assert.Equal(4.0, f.Double("layers"));
        Assert.Equal([2, 3, 3], f.Ints("section"));
        Assert.Equal("in code: key 'big' must be an integer between -2,147,483,648 and 2,147,483,647, got 1000000000000", Refusal(() => f.Int("big")));
    }
}
