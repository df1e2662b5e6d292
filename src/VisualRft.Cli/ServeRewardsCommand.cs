using System.CommandLine;
using VisualRft.Rewards;

namespace VisualRft.Cli;

/// <summary>
/// <c>vrft serve-rewards [--host 127.0.0.1] [--port 8000] [--task detection] [--preset visual-rft] [--max-batch N]
/// [--max-body-bytes N] [--timeout S] [--max-concurrency N]</c>: the HTTP reward server (<see cref="RewardServer"/>) for
/// runs on other engines: <c>POST /score</c> (the objects of <c>vrft score</c>), OpenRLHF's <c>--remote_rm_url</c>
/// (<c>POST /get_reward</c>), <c>GET /health</c>. Prints <c>listening on URL</c> once bound, then one line per request;
/// SIGTERM or Ctrl-C finish the requests in flight and exit 0.
/// </summary>
public static class ServeRewardsCommand
{
    public static Command Create()
    {
        var defaults = new RewardServerOptions();
        var host = new Option<string>("--host") { Description = "address to bind (no authentication: keep loopback unless the network is trusted)", DefaultValueFactory = _ => defaults.Host };
        var port = new Option<int>("--port") { Description = "TCP port; 0 picks a free one", DefaultValueFactory = _ => defaults.Port };
        var task = new Option<string>("--task") { Description = "task of items that name none (and of OpenRLHF requests)", DefaultValueFactory = _ => "detection" };
        task.AcceptOnlyFromAmong(EnumNames.All<VisualTask>());
        var preset = new Option<string>("--preset") { Description = "preset of items that name none", DefaultValueFactory = _ => "visual-rft" };
        preset.AcceptOnlyFromAmong(EnumNames.All<RewardPreset>());
        var maxBatch = new Option<int>("--max-batch") { Description = "most items in one request (413 above)", DefaultValueFactory = _ => defaults.MaxBatch };
        var maxBody = new Option<int>("--max-body-bytes") { Description = "largest request body (413 above)", DefaultValueFactory = _ => (int)defaults.MaxBodyBytes };
        var timeout = new Option<double>("--timeout") { Description = "seconds a request may take, waiting included (503 past it)", DefaultValueFactory = _ => defaults.RequestTimeout.TotalSeconds };
        var concurrency = new Option<int>("--max-concurrency") { Description = "requests scored at once; others wait", DefaultValueFactory = _ => defaults.MaxConcurrency };
        var cmd = new Command("serve-rewards", "Serve the Visual-RFT rewards over HTTP for verl, EasyR1, TRL and OpenRLHF runs")
            { host, port, task, preset, maxBatch, maxBody, timeout, concurrency };
        cmd.SetAction(async (parse, cancellation) =>
        {
            var options = new RewardServerOptions
            {
                Host = parse.GetValue(host)!,
                Port = OptionChecks.InRange(parse, port, 0, 65535),
                Task = EnumNames.Parse<VisualTask>(parse.GetValue(task)!, "task"),
                Preset = EnumNames.Parse<RewardPreset>(parse.GetValue(preset)!, "preset"),
                MaxBatch = OptionChecks.InRange(parse, maxBatch, 1, 1 << 20),
                MaxBodyBytes = OptionChecks.InRange(parse, maxBody, 1024, int.MaxValue),
                RequestTimeout = TimeSpan.FromSeconds(Math.Min(OptionChecks.FinitePositive(parse, timeout), 3600)),
                MaxConcurrency = OptionChecks.InRange(parse, concurrency, 1, 1024),
            };
            var output = parse.InvocationConfiguration.Output;
            await using var server = await RewardServer.StartAsync(options, output, cancellation);
            output.WriteLine($"listening on {server.Address.ToString().TrimEnd('/')} (task {parse.GetValue(task)}, preset {parse.GetValue(preset)}); POST /score, POST /get_reward (OpenRLHF), GET /health");
            output.Flush();
            await server.WaitForShutdownAsync(cancellation);
            output.WriteLine("stopped");
            return 0;
        });
        return cmd;
    }
}
