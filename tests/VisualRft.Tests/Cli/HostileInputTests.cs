using System.CommandLine;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using TorchSharp;
using VisualRft.Cli;
using VisualRft.IO;
using VisualRft.TinyModel;
using Xunit.Abstractions;

namespace VisualRft.Tests.Cli;

/// <summary>
/// The probes of issue 12 kept as a table: crafted inputs (small files made here, in a temporary folder) given to the
/// real commands; each must end with exactly one line on stderr naming the file or option, the key and the problem, a
/// non-zero exit code, and no stack trace. Model folders are refused before the model is built.
/// </summary>
public sealed class HostileInputTests(ITestOutputHelper output) : IDisposable
{
    readonly string root = Path.Combine(Path.GetTempPath(), $"vrft-hostile-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
    }

    /// <summary>A copy of the shipped tiny model folder (the weights linked, not copied), edited by <paramref name="edit"/>.</summary>
    string ModelFolder(Action<string> edit)
    {
        var dir = Path.Combine(root, "model-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var tiny = TinyQwen2Vl.ExtractedFolder();
        foreach (var f in Directory.GetFiles(tiny))
            if (Path.GetFileName(f) == "model.safetensors") File.CreateSymbolicLink(Path.Combine(dir, "model.safetensors"), f);
            else File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        edit(dir);
        return dir;
    }

    static void EditJson(string path, Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    static Action<string> Config(Action<JsonObject> edit) => dir => EditJson(Path.Combine(dir, "config.json"), edit);
    static Action<string> Vision(Action<JsonObject> edit) => Config(c => edit(c["vision_config"]!.AsObject()));

    /// <summary>A safetensors file from a raw header and data length (the data is zeros).</summary>
    static void RawSafetensors(string path, string header, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes((long)h.Length));
        fs.Write(h);
        fs.Write(new byte[dataBytes]);
    }

    /// <summary>The shipped weights with one tensor replaced.</summary>
    static Action<string> Weights(string name, Func<torch.Tensor, torch.Tensor> replace) => dir =>
    {
        using var scope = torch.NewDisposeScope();
        var path = Path.Combine(dir, "model.safetensors");
        var all = SafeTensors.Load(path);
        all[name] = replace(all[name]);
        File.Delete(path);
        SafeTensors.Save(path, all);
    };

    // Row: the command line (built from the temporary folder), the exit code, and what the one line must say.
    public static TheoryData<string> Rows() => [.. Cases.Keys];

    static readonly Dictionary<string, (Func<HostileInputTests, string[]> Args, int Code, string[] Says)> Cases = new()
    {
        // --- model folders (vrft pretrain-tiny --from DIR --steps 0), refused before the model is built
        ["10^6 text layers"] = (t => t.From(Config(c => c["num_hidden_layers"] = 1_000_000)), 2, ["config.json", "key 'num_hidden_layers'", "between 1 and 256"]),
        ["vision depth 10^6"] = (t => t.From(Vision(v => v["depth"] = 1_000_000)), 2, ["config.json", "key 'vision_config.depth'"]),
        ["hidden size 65,536, consistent"] = (t => t.From(Config(c =>
        {
            c["hidden_size"] = 65536; c["intermediate_size"] = 131072; c["vision_config"]!["hidden_size"] = 65536;
            c["rope_scaling"]!["mrope_section"] = new JsonArray(2048, 3072, 3072);
        })), 2, ["config.json", "key 'hidden_size'", "between 1 and 16,384"]),
        ["hidden size 10^9"] = (t => t.From(Config(c => c["hidden_size"] = 1_000_000_000)), 2, ["config.json", "key 'hidden_size'"]),
        ["num_attention_heads 0"] = (t => t.From(Config(c => c["num_attention_heads"] = 0)), 2, ["config.json", "key 'num_attention_heads'"]),
        ["window_size 0 (Qwen2.5-VL)"] = (t => t.From(dir =>
        {
            File.Copy(Path.Combine(Golden.Dir, "qwen2_5_vl", "config.json"), Path.Combine(dir, "config.json"), overwrite: true);
            Vision(v => v["window_size"] = 0)(dir);
        }), 2, ["config.json", "key 'vision_config.window_size'"]),
        ["a string for an integer"] = (t => t.From(Config(c => c["num_hidden_layers"] = "4")), 2, ["config.json", "key 'num_hidden_layers' must be an integer", "\"4\""]),
        ["a string for a number"] = (t => t.From(Config(c => c["rope_theta"] = "big")), 2, ["config.json", "key 'rope_theta' must be a number"]),
        ["a string for a boolean"] = (t => t.From(Config(c => c["tie_word_embeddings"] = "yes")), 2, ["config.json", "key 'tie_word_embeddings' must be true or false"]),
        ["a string for a vision integer"] = (t => t.From(Vision(v => v["patch_size"] = "14")), 2, ["config.json", "key 'vision_config.patch_size'"]),
        ["a string in mrope_section"] = (t => t.From(Config(c => c["rope_scaling"]!["mrope_section"] = new JsonArray("a", 6, 6))), 2, ["config.json", "mrope_section[0]"]),
        ["a config that the checkpoint contradicts"] = (t => t.From(Config(c =>
        {
            c["hidden_size"] = 256; c["vision_config"]!["hidden_size"] = 256;
            c["rope_scaling"]!["mrope_section"] = new JsonArray(8, 12, 12);
        })), 2, ["config.json", "do not match", "wrong shape", "model.embed_tokens.weight: checkpoint [675,128], model [675,256]"]),
        ["config.json is a folder"] = (t => t.From(dir => { File.Delete(Path.Combine(dir, "config.json")); Directory.CreateDirectory(Path.Combine(dir, "config.json")); }),
            2, ["config.json", "is a directory"]),
        ["a 2 MB config.json"] = (t => t.From(dir => File.WriteAllText(Path.Combine(dir, "config.json"), "{\"x\": \"" + new string('a', 2 << 20) + "\"}")),
            2, ["config.json", "more than 1,048,576 bytes"]),
        ["config.json not JSON"] = (t => t.From(dir => File.WriteAllText(Path.Combine(dir, "config.json"), "{\"model_type\": ")), 2, ["config.json", "not valid JSON"]),
        ["a token id of 5·10^8"] = (t => t.From(dir => EditJson(Path.Combine(dir, "tokenizer.json"), j =>
        {
            var vocab = j["model"]!["vocab"]!.AsObject();
            vocab[vocab.First().Key] = 500_000_000;
        })), 2, ["tokenizer.json", "id 500,000,000", "ids must be between 0 and"]),
        ["a token id that is a string"] = (t => t.From(dir => EditJson(Path.Combine(dir, "tokenizer.json"), j =>
        {
            var vocab = j["model"]!["vocab"]!.AsObject();
            vocab[vocab.First().Key] = "7";
        })), 2, ["tokenizer.json", "key 'model.vocab.", "must be an integer, got \"7\""]),
        ["min_pixels 10^12"] = (t => t.From(dir => EditJson(Path.Combine(dir, "preprocessor_config.json"), j => j["min_pixels"] = 1_000_000_000_000L)),
            2, ["preprocessor_config.json", "key 'min_pixels'"]),
        ["image_std 0"] = (t => t.From(dir => EditJson(Path.Combine(dir, "preprocessor_config.json"), j => j["image_std"] = new JsonArray(0, 0, 0))),
            2, ["preprocessor_config.json", "key 'image_std'"]),
        ["a shard outside the folder"] = (t => t.From(dir =>
        {
            File.Delete(Path.Combine(dir, "model.safetensors"));
            File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), """{"weight_map": {"model.norm.weight": "../../etc/passwd"}}""");
        }), 2, ["model.safetensors.index.json", "model.norm.weight", "not a file inside the model folder"]),
        ["overlapping byte ranges"] = (t => t.From(dir =>
        {
            File.Delete(Path.Combine(dir, "model.safetensors"));
            RawSafetensors(Path.Combine(dir, "model.safetensors"),
                """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""", 24);
        }), 2, ["model.safetensors", "'a' [0, 16) and 'b' [8, 24) overlap"]),
        ["an integer tensor for a float parameter"] = (t => t.From(Weights("model.norm.weight", w => w.to_type(torch.int64))),
            2, ["do not match", "not floating point", "model.norm.weight: I64"]),
        ["a header length of 2^63 - 1"] = (t => t.From(dir =>
        {
            File.Delete(Path.Combine(dir, "model.safetensors"));
            File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), [.. BitConverter.GetBytes(long.MaxValue), .. new byte[16]]);
        }), 2, ["model.safetensors", "header length"]),
        ["no such model folder"] = (t => ["pretrain-tiny", "--from", Path.Combine(t.root, "absent"), "--steps", "0", "--out", t.Out()], 2, ["model folder not found", "absent"]),

        ["config.json with a key given twice"] = (t => t.From(dir =>
        {
            var path = Path.Combine(dir, "config.json");
            File.WriteAllText(path, File.ReadAllText(path).Insert(1, "\"hidden_size\": 64, "));
        }), 2, ["config.json: key 'hidden_size' is given twice"]),
        ["config.json is /dev/zero"] = (t => t.From(dir =>
        {
            File.Delete(Path.Combine(dir, "config.json"));
            File.CreateSymbolicLink(Path.Combine(dir, "config.json"), "/dev/zero");
        }), 2, ["config.json: not a regular file"]),
        ["a processor that cuts other patches than the model reads"] = (t => t.From(dir => EditJson(Path.Combine(dir, "preprocessor_config.json"), j => j["merge_size"] = 4)),
            2, ["merge_size 4", "spatial_merge_size 2"]),

        // --- sizes and counts from the command line, checked before any work
        ["--shots -1"] = (t => ["quickstart", "--shots", "-1", "--out", t.Out()], 1, ["option --shots: must be between 1 and"]),
        ["--shots beyond memory"] = (t => ["quickstart", "--shots", "2147483647", "--out", t.Out()], 1, ["option --shots", "must fit in"]),
        ["--test -5"] = (t => ["quickstart", "--test", "-5", "--out", t.Out()], 1, ["option --test: must be between 1 and"]),
        ["--steps -1"] = (t => ["quickstart", "--steps", "-1", "--out", t.Out()], 1, ["option --steps: must be between 1 and"]),
        ["--lr NaN"] = (t => ["quickstart", "--lr", "NaN", "--out", t.Out()], 1, ["option --lr: must be a finite positive number"]),
        ["table --sft-steps 0"] = (t => ["table", "3", "--sft-steps", "0", "--out", t.Out()], 1, ["option --sft-steps: must be between 1 and"]),
        ["--out is a file"] = (t => ["quickstart", "--out", t.TextFile("a-file", "x")], 1, ["option --out", "is a file"]),
        ["--images-per-category beyond memory"] = (t => ["pretrain-tiny", "--images-per-category", "2147483647", "--out", t.Out()], 1, ["option --images-per-category"]),
        ["pretrain --steps -1"] = (t => ["pretrain-tiny", "--steps", "-1", "--out", t.Out()], 1, ["option --steps"]),

        // --- vrft score
        ["score a folder"] = (t => ["score", "--task", "detection", t.root], 2, ["is a directory"]),
        ["score a missing file"] = (t => ["score", "--task", "detection", Path.Combine(t.root, "none.jsonl")], 2, ["none.jsonl", "does not exist"]),
        ["score UTF-16"] = (t => ["score", "--task", "detection", t.TextFile("u16.jsonl", "{\"completion\": \"\", \"solution\": \"\"}\n", Encoding.Unicode)], 2, ["u16.jsonl", "UTF-16"]),
        ["score /dev/zero"] = (t => ["score", "--task", "detection", "--max-line-bytes", "1073741824", "/dev/zero"], 2,
            ["vrft score: /dev/zero: not a regular file (a device or a pipe), where the JSON lines file should be"]),
        ["--max-line-bytes 1"] = (t => ["score", "--task", "detection", "--max-line-bytes", "1"], 1, ["option --max-line-bytes"]),

        // --- vrft eval: inputs bounded before parsing, options (--out included) before the inputs
        ["eval coco --gt /dev/zero"] = (t => ["eval", "coco", "--gt", "/dev/zero", "--dt", t.TextFile("dt.json", "[]")], 2, ["vrft eval coco: /dev/zero: not a regular file", "annotation file"]),
        ["eval coco --dt /dev/zero"] = (t => ["eval", "coco", "--gt", t.TextFile("gt.json", Gt), "--dt", "/dev/zero"], 2, ["vrft eval coco: /dev/zero: not a regular file", "results file"]),
        ["eval --gt a folder"] = (t => ["eval", "coco", "--gt", t.root, "--dt", t.TextFile("dt.json", "[]")], 2, ["is a directory, where the annotation file should be"]),
        ["eval lvis --max-dets -1"] = (t => ["eval", "lvis", "--gt", t.TextFile("gt.json", Gt), "--dt", t.TextFile("dt.json", "[]"), "--max-dets", "-1"],
            1, ["vrft eval lvis: option --max-dets: must be between 1 and"]),
        ["eval --out where nothing can be written, found before the inputs"] = (t => ["eval", "coco", "--gt", "/dev/zero", "--dt", "/dev/zero", "--out", "/proc/vrft-eval.json"],
            1, ["option --out: cannot write '/proc/vrft-eval.json' (no new file can be created there)"]),
        ["eval --out a folder"] = (t => ["eval", "coco", "--gt", t.TextFile("gt.json", Gt), "--dt", t.TextFile("dt.json", "[]"), "--out", t.root], 1, ["option --out", "is a folder, not a file"]),

        // --- vrft run: every bad notebook named, before the kernel starts
        ["run a file that is not JSON"] = (t => t.Run(t.TextFile("broken.ipynb", "{\"cells\": [")), 2, ["broken.ipynb: not a notebook, not valid JSON"]),
        ["run a JSON array"] = (t => t.Run(t.TextFile("array.ipynb", "[1, 2]")), 2, ["array.ipynb: not a notebook, the JSON is a list"]),
        ["run a notebook without cells"] = (t => t.Run(t.TextFile("nocells.ipynb", "{\"nbformat\": 4, \"metadata\": {}}")), 2, ["nocells.ipynb: not a notebook, it has no key 'cells'"]),
        ["run a cell whose source is 42"] = (t => t.Run(t.TextFile("source42.ipynb", "{\"cells\": [{\"cell_type\": \"code\", \"source\": 42}]}")),
            2, ["source42.ipynb: cells[0]: key 'source' must be text or a list of lines, got the number 42"]),
        ["run a .txt file"] = (t => t.Run(t.TextFile("notes.txt", "1 + 1")), 2, ["notes.txt: not a notebook (.ipynb or .dib), the extension is '.txt'"]),
        ["run a folder"] = (t => t.Run(t.Folder("folder.ipynb")), 2, ["folder.ipynb: is a directory, where the notebook should be"]),
        ["run /dev/zero"] = (t => t.Run("/dev/zero"), 2, ["/dev/zero: not a notebook"]),
        ["run a notebook that is /dev/zero"] = (t => t.Run(t.Link("zero.ipynb", "/dev/zero")), 2, ["zero.ipynb: not a regular file"]),
        ["run a missing notebook"] = (t => t.Run(Path.Combine(t.root, "absent.ipynb")), 2, ["notebook not found", "absent.ipynb"]),
        ["run --out a file"] = (t => [.. t.Run(t.TextFile("ok.ipynb", OneCell)).SkipLast(2), "--out", t.TextFile("a-file", "x")], 1, ["option --out", "is a file, not a folder"]),
        ["run --out where nothing can be written"] = (t => [.. t.Run(t.TextFile("ok.ipynb", OneCell)).SkipLast(2), "--out", "/proc"], 1, ["option --out: cannot write '/proc' (no new file can be created there)"]),
        ["an unknown task"] = (t => ["score", "--task", "segmentation"], 1, ["vrft score: Argument 'segmentation' not recognized", "(see vrft score --help)"]),
        ["a value of the wrong type"] = (t => ["quickstart", "--shots", "four"], 1, ["vrft quickstart: Cannot parse argument 'four' for option '--shots'"]),
    };

    /// <summary>The smallest COCO annotation file: one image, one category, no annotations.</summary>
    const string Gt = """{"images": [{"id": 1, "width": 10, "height": 10}], "categories": [{"id": 1, "name": "a"}], "annotations": []}""";

    const string OneCell = """{"cells": [{"cell_type": "code", "source": "1 + 1", "metadata": {}, "outputs": []}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}""";

    string[] Run(string notebook) => ["run", notebook, "--out", Out()];

    string Folder(string name)
    {
        var path = Path.Combine(root, name);
        Directory.CreateDirectory(path);
        return path;
    }

    string Link(string name, string target)
    {
        Directory.CreateDirectory(root);
        var path = Path.Combine(root, name);
        File.CreateSymbolicLink(path, target);
        return path;
    }

    string[] From(Action<string> edit) => ["pretrain-tiny", "--from", ModelFolder(edit), "--steps", "0", "--out", Out()];

    string Out() => Path.Combine(root, "out-" + Guid.NewGuid().ToString("N")[..8]);

    string TextFile(string name, string text, Encoding? encoding = null)
    {
        Directory.CreateDirectory(root);
        var path = Path.Combine(root, name);
        File.WriteAllText(path, text, encoding ?? new UTF8Encoding(false));
        return path;
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public void Crafted_input_gives_one_line_naming_the_problem(string row)
    {
        Directory.CreateDirectory(root);
        var (args, code, says) = Cases[row];
        var (o, e) = (new StringWriter(), new StringWriter());
        int exit = VrftCommandLine.Run(args(this), new InvocationConfiguration { Output = o, Error = e });
        var err = e.ToString();
        output.WriteLine($"{row}: exit {exit}: {err.TrimEnd()}");
        Assert.Equal(code, exit);
        Assert.Equal(1, err.Count(ch => ch == '\n'));
        Assert.DoesNotContain("   at ", err + o);
        foreach (var s in says) Assert.Contains(s, err);
    }

    [Fact]
    public void Vrft_run_checks_out_before_the_first_cell()
    {
        var marker = Path.Combine(root, "cell-ran");
        var notebook = TextFile("marks.ipynb", OneCell.Replace("1 + 1", $"System.IO.File.WriteAllText(@\\\"{marker}\\\", \\\"\\\")"));
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(1, VrftCommandLine.Run(["run", notebook, "--out", TextFile("a-file", "x")], new InvocationConfiguration { Output = o, Error = e }));
        Assert.Contains("option --out", e.ToString());
        Assert.False(File.Exists(marker), "a cell ran before --out was refused");
    }

    [Theory]
    [InlineData("quickstart")]
    [InlineData("export verl --dataset shapes-detection")]
    public async Task A_folder_where_the_manifest_should_be_stops_the_command_naming_it(string command)
    {
        // issue 19: the manifest lookup fell back to the embedded copy and vrft quickstart exited 0; a process, because the
        // lookup starts at the working directory
        var manifest = Path.Combine(root, "data-manifests", "shapes-detection.json");
        Directory.CreateDirectory(manifest);
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "vrft.dll"), .. command.Split(' '), "--out", Out()])
            { WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["VRFT_THREADS"] = "1";
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var err = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "still running: the embedded manifest was used");
        Assert.Equal(VrftCommandLine.ExitCodes.Input, p.ExitCode);
        Assert.Equal($"vrft {command.Split(" --")[0]}: {manifest}: is a directory, where the dataset manifest should be\n", await err);
        Assert.DoesNotContain("   at ", await stdout);
    }

    [Fact]
    public void Verbose_adds_the_stack_trace()
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int exit = VrftCommandLine.Run(["score", "--task", "detection", "--verbose", Path.Combine(root, "none.jsonl")],
            new InvocationConfiguration { Output = o, Error = e });
        Assert.Equal(2, exit);
        Assert.StartsWith("vrft score: input file", e.ToString());
        Assert.Contains("   at ", e.ToString());
    }
}
