using System.Text.Json.Nodes;
using VisualRft.Data;
using VisualRft.Evaluation;
using VisualRft.Models.Qwen2VL;
using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;
using VisualRft.TinyModel;

namespace VisualRft.Tests.TinyModel;

[Collection(nameof(BitForBit))]
public class TinyQwen2VlTests
{
    [Fact]
    public void The_shipped_model_loads_offline_and_answers_base_categories_in_the_papers_format()
    {
        Assert.True(TinyQwen2Vl.IsAvailable, "the package must embed the tiny model (src/VisualRft/TinyModel/weights)");
        using var policy = TinyQwen2Vl.Pretrained();
        Assert.Equal(Qwen2VLConfig.Qwen2VLType, policy.Model.Config.ModelType);
        Assert.InRange(policy.Model.parameters().Sum(p => p.numel()), 100_000, 5_000_000);
        // base categories: what it was pre-trained on (shapes-ovd trains on base only)
        var data = SyntheticDatasets.Load("shapes-ovd", shots: 1, testSize: 1);
        var samples = data.Train.Where((_, i) => i % 7 == 0).ToList();
        var report = PolicyEvaluator.Evaluate(policy, samples, TaskReward.Create(VisualTask.Detection), "tiny", maxNewTokens: 96);
        Assert.Equal(1.0, report.Rewards["format"].Mean);
        foreach (var e in report.Samples)
        {
            var answer = Answers.ParseDetection(e.Completion, RewardPreset.Strict);
            Assert.Null(answer.Failure);
            Assert.NotEmpty(answer.Boxes);
            Assert.Contains(e.Sample.Category, e.Completion);   // the think block names the queried category
        }
    }

    [Fact]
    public void Pretraining_runs_its_stages_in_order_and_is_deterministic()
    {
        using var oneThread = BitForBit.OneThread();
        var options = new TinyPretrainOptions
        {
            VocabSize = 300, Hidden = 32, Layers = 1, VisionWidth = 16, VisionDepth = 1,
            Stages = [new([new("shapes-first-look", 4)], 3, 1e-3), new([new("shapes-single-object", 1), new("shapes-pretrain-classification", 1)], 2, 1e-3)],
        };
        var steps = new List<(int Stage, int Step)>();
        var ends = new List<int>();
        using var a = TinyQwen2Vl.Pretrain(options, (stage, s) => steps.Add((stage, s.Step)), (stage, _) => ends.Add(stage));
        Assert.Equal([(0, 1), (0, 2), (0, 3), (1, 1), (1, 2)], steps);   // each stage has its own optimizer and schedule
        Assert.Equal([0, 1], ends);
        using var b = TinyQwen2Vl.Pretrain(options);
        foreach (var ((name, pa), (_, pb)) in a.Model.named_parameters().Zip(b.Model.named_parameters()))
            Assert.True(pa.eq(pb).all().item<bool>(), $"{name} differs between two runs with the same options");
        Assert.Throws<ArgumentException>(() => TinyQwen2Vl.Pretrain(options with { Stages = [] }));
    }

    [Fact]
    public void Config_json_round_trips_for_both_families()
    {
        foreach (var config in new[] { Qwen2VLConfig.Tiny(), Qwen2VLConfig.Tiny(Qwen2VLConfig.Qwen25VLType), Qwen2VLConfig.Qwen2VL2B() })
        {
            var back = Qwen2VLConfig.Parse((JsonObject)JsonNode.Parse(config.ToJson().ToJsonString())!, "round trip");
            Assert.Equal(config.ToJson().ToJsonString(), back.ToJson().ToJsonString());
            Assert.Equal(config.Text with { MropeSection = [] }, back.Text with { MropeSection = [] });
            Assert.Equal(config.Text.MropeSection, back.Text.MropeSection);
        }
    }
}
