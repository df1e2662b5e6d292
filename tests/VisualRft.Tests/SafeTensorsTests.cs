using TorchSharp;
using VisualRft.IO;
using VisualRft.Torch;

namespace VisualRft.Tests;

public class SafeTensorsTests
{
    public SafeTensorsTests() => TorchRuntime.EnsureLoaded();

    static string Temp(string name) => Path.Combine(Path.GetTempPath(), $"vrft-st-{Guid.NewGuid():N}-{name}");

    [Fact]
    public void Round_trips_tensors_of_several_dtypes()
    {
        var path = Temp("rt.safetensors");
        var tensors = new Dictionary<string, torch.Tensor>
        {
            ["a"] = torch.arange(6, dtype: torch.float32).reshape(2, 3),
            ["b"] = torch.tensor(new long[] { 1, -2, 3 }),
            ["c"] = torch.ones(4, dtype: torch.bfloat16) * 1.5,
        };
        SafeTensors.Save(path, tensors);
        var back = SafeTensors.Load(path);
        Assert.True(back["a"].eq(tensors["a"]).all().item<bool>());
        Assert.True(back["b"].eq(tensors["b"]).all().item<bool>());
        Assert.Equal(torch.bfloat16, back["c"].dtype);
        var asF32 = SafeTensors.Load(path, torch.float32);
        Assert.Equal(torch.float32, asF32["c"].dtype);
        Assert.Equal(1.5f, asF32["c"][0].item<float>());
        File.Delete(path);
    }

    [Fact]
    public void Reads_the_golden_fixture_headers()
    {
        var header = SafeTensors.ReadHeader(Path.Combine(Golden.Dir, "qwen2_vl", "model.safetensors"));
        Assert.Contains(header.Tensors, t => t.Name == "model.language_model.embed_tokens.weight");
    }

    public static TheoryData<string, byte[]> Corrupt()
    {
        static byte[] File(string header, int dataBytes)
        {
            var h = System.Text.Encoding.UTF8.GetBytes(header);
            return [.. BitConverter.GetBytes((long)h.Length), .. h, .. new byte[dataBytes]];
        }
        return new()
        {
            { "fewer than the 8-byte", new byte[3] },
            { "header length", [.. BitConverter.GetBytes(long.MaxValue), 1, 2] },
            { "not valid JSON", File("{oops", 0) },
            { "unsupported dtype", File("{\"x\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4) },
            { "outside", File("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4) },
            { "spans", File("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8) },
            { "impossible size", File("{\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8) },
            { "invalid dimension", File("{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4) },
            { "'x' [0, 16) and 'y' [8, 24) overlap", File("{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"y\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24) },
            { "'x' is listed twice", File("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8) },
        };
    }

    [Theory]
    [MemberData(nameof(Corrupt))]
    public void Crafted_or_truncated_files_give_a_clear_error(string expected, byte[] content)
    {
        var path = Temp("bad.safetensors");
        File.WriteAllBytes(path, content);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.Contains(expected, e.Message);
        Assert.Contains(path, e.Message);
        File.Delete(path);
    }

    [Fact]
    public void A_truncated_real_file_is_refused()
    {
        var src = File.ReadAllBytes(Path.Combine(Golden.Dir, "qwen2_vl", "model.safetensors"));
        var path = Temp("trunc.safetensors");
        File.WriteAllBytes(path, src[..(src.Length / 2)]);
        Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        File.Delete(path);
    }
}
