using TorchSharp;
using VisualRft.Data;
using VisualRft.Evaluation;
using VisualRft.Grpo;
using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;
using VisualRft.Tests.Grpo;
using VisualRft.Training;

namespace VisualRft.Tests.Training;

public class SftTrainerTests(TinyTrainerFixture fx) : IClassFixture<TinyTrainerFixture>
{
    [Fact]
    public void Targets_are_a_think_block_then_the_solution_and_earn_full_reward()
    {
        var reward = TaskReward.Create(VisualTask.Detection);
        foreach (var s in fx.Data.Train)
        {
            var target = SftTrainer.Target(s);
            Assert.StartsWith("<think>", target);
            Assert.Equal(s.Solution.Trim(), target[target.IndexOf("<answer>")..]);
            var score = reward.Score(target, s.Solution);
            Assert.Equal(1.0, score["format"]);
            Assert.Equal(1.0, score["iou"], 9);
            Assert.Equal(1.0, score["confidence"], 9);
        }
    }

    [Fact]
    public void Teacher_forcing_lowers_the_loss_on_the_targets()
    {
        using var policy = fx.NewPolicy(seed: 11);
        var batch = fx.Data.Train.Take(4).ToList();
        double before;
        using (torch.no_grad()) before = SftTrainer.Loss(policy, batch).item<float>();
        using var sft = new SftTrainer(policy, batch, new SftOptions { LearningRate = 3e-3, BatchSize = 4, LrSchedule = LrSchedule.Constant }, totalSteps: 30);
        var steps = sft.Train().ToList();
        Assert.Equal(30, steps.Count);
        Assert.All(steps, s => Assert.False(s.Skipped));
        double after;
        using (torch.no_grad()) after = SftTrainer.Loss(policy, batch).item<float>();
        Assert.True(after < 0.8 * before, $"loss {before:F3} -> {after:F3}");
    }

    [Fact]
    public void The_evaluator_scores_greedy_answers_and_reports_detection_quality()
    {
        using var policy = fx.NewPolicy();
        var test = fx.Data.Test.Take(3).ToList();
        var report = PolicyEvaluator.Evaluate(policy, test, TaskReward.Create(VisualTask.Detection), "random", maxNewTokens: 6, batchSize: 2);
        Assert.Equal(3, report.Samples.Count);
        Assert.Equal(["iou", "confidence", "format"], report.Rewards.Keys);
        Assert.NotNull(report.Detection);
        Assert.Equal(test.Select(s => s.Category).Distinct().Count(), report.Detection!.PerCategory.Count);
        Assert.Equal(0.0, report.Reward.Mean);             // six random tokens are never a well-formed answer
        // greedy decoding is deterministic
        var again = PolicyEvaluator.Evaluate(policy, test, TaskReward.Create(VisualTask.Detection), "random", maxNewTokens: 6, batchSize: 3);
        Assert.Equal(report.Samples.Select(s => s.Completion), again.Samples.Select(s => s.Completion));
    }
}
