using System.Text;

namespace VisualRft.Text;

/// <summary>One part of a message's content: text, or the place of an image / a video.</summary>
public abstract record ChatPart;
public sealed record TextPart(string Text) : ChatPart;
public sealed record ImagePart : ChatPart;
public sealed record VideoPart : ChatPart;

/// <summary>A chat message: a role (<c>system</c>, <c>user</c>, <c>assistant</c>) and its content parts.</summary>
public sealed record ChatMessage(string Role, IReadOnlyList<ChatPart> Content)
{
    public ChatMessage(string role, string text) : this(role, new ChatPart[] { new TextPart(text) }) { }
}

/// <summary>The Qwen2-VL / Qwen2.5-VL Instruct chat template (qwen2vl-spec §6.4) rendered without Jinja, and the
/// <c>&lt;|image_pad|&gt;</c> expansion of the processor (§6.3).</summary>
public static class ChatTemplate
{
    public const string DefaultSystemPrompt = "You are a helpful assistant.";

    /// <summary>Renders <paramref name="messages"/>: a default system turn when the first message is not a system one,
    /// each message as <c>&lt;|im_start|&gt;role\n…&lt;|im_end|&gt;\n</c>, images as
    /// <c>&lt;|vision_start|&gt;&lt;|image_pad|&gt;&lt;|vision_end|&gt;</c> (optionally preceded by <c>Picture n: </c>),
    /// and <c>&lt;|im_start|&gt;assistant\n</c> when <paramref name="addGenerationPrompt"/>.</summary>
    public static string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, bool addVisionId = false)
    {
        var sb = new StringBuilder();
        int images = 0, videos = 0;
        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            if (i == 0 && m.Role != "system")
                sb.Append(Qwen2Tokenizer.ImStart).Append("system\n").Append(DefaultSystemPrompt).Append(Qwen2Tokenizer.ImEnd).Append('\n');
            sb.Append(Qwen2Tokenizer.ImStart).Append(m.Role).Append('\n');
            foreach (var part in m.Content)
                switch (part)
                {
                    case ImagePart:
                        images++;
                        if (addVisionId) sb.Append("Picture ").Append(images).Append(": ");
                        sb.Append(Qwen2Tokenizer.VisionStart).Append(Qwen2Tokenizer.ImagePad).Append(Qwen2Tokenizer.VisionEnd);
                        break;
                    case VideoPart:
                        videos++;
                        if (addVisionId) sb.Append("Video ").Append(videos).Append(": ");
                        sb.Append(Qwen2Tokenizer.VisionStart).Append(Qwen2Tokenizer.VideoPad).Append(Qwen2Tokenizer.VisionEnd);
                        break;
                    case TextPart t:
                        sb.Append(t.Text);
                        break;
                }
            sb.Append(Qwen2Tokenizer.ImEnd).Append('\n');
        }
        if (addGenerationPrompt) sb.Append(Qwen2Tokenizer.ImStart).Append("assistant\n");
        return sb.ToString();
    }

    /// <summary>The prompt of one user message made of an image then <paramref name="text"/> (spec §6.5), the form the
    /// Visual-RFT rollouts use.</summary>
    public static string ImageQuestion(string text) =>
        Render(new[] { new ChatMessage("user", new ChatPart[] { new ImagePart(), new TextPart(text) }) });

    /// <summary>Replaces the k-th <c>&lt;|image_pad|&gt;</c> of <paramref name="text"/> by <c>tokensPerImage[k]</c> copies
    /// (t·h·w / merge² from the grid); the counts must match the placeholders one for one.</summary>
    public static string ExpandImagePads(string text, IReadOnlyList<int> tokensPerImage, string pad = Qwen2Tokenizer.ImagePad)
    {
        var sb = new StringBuilder(text.Length);
        int k = 0, start = 0;
        for (int at; (at = text.IndexOf(pad, start, StringComparison.Ordinal)) >= 0; start = at + pad.Length, k++)
        {
            if (k >= tokensPerImage.Count)
                throw new ArgumentException($"the text has more {pad} placeholders than the {tokensPerImage.Count} image(s) given");
            sb.Append(text, start, at - start);
            for (int r = 0; r < tokensPerImage[k]; r++) sb.Append(pad);
        }
        if (k != tokensPerImage.Count)
            throw new ArgumentException($"the text has {k} {pad} placeholder(s) but {tokensPerImage.Count} image(s) were given");
        return sb.Append(text, start, text.Length - start).ToString();
    }
}
