using System.CommandLine;
using VisualRft.Cli;
using VisualRft.TinyModel;

namespace VisualRft.Tests.Cli;

public class PretrainTinyCommandTests
{
    [Fact]
    public void Zero_steps_from_a_model_only_rewrites_it_and_reports_whether_its_boxes_come_from_the_image()
    {
        var output = Path.Combine(Path.GetTempPath(), "vrft-pretrain-check-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var o = new StringWriter();
            using var e = new StringWriter();
            var root = new RootCommand { PretrainTinyCommand.Create() };
            var code = root.Parse(["pretrain-tiny", "--from", TinyQwen2Vl.ExtractedFolder(), "--steps", "0", "--out", output])
                .Invoke(new InvocationConfiguration { Output = o, Error = e });
            Assert.True(code == 0, e.ToString());
            Assert.Matches(@"held-out base images \(56\): box coordinates: NLL \d+\.\d{3} with the right images, \d+\.\d{3} with swapped ones", o.ToString());
            Assert.Equal(File.ReadAllBytes(Path.Combine(TinyQwen2Vl.ExtractedFolder(), "model.safetensors")),
                File.ReadAllBytes(Path.Combine(output, "model.safetensors")));
        }
        finally
        {
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
    }
}
