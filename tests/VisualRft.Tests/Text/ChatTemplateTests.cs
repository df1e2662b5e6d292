using VisualRft.Text;

namespace VisualRft.Tests.Text;

public class ChatTemplateTests
{
    [Fact]
    public void Image_question_renders_the_instruct_template_exactly()
    {
        Assert.Equal(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n" +
            "<|vision_start|><|image_pad|><|vision_end|>Detect the cat.<|im_end|>\n<|im_start|>assistant\n",
            ChatTemplate.ImageQuestion("Detect the cat."));
    }

    [Fact]
    public void Explicit_system_turn_string_content_vision_ids_and_no_generation_prompt()
    {
        var text = ChatTemplate.Render(new[]
        {
            new ChatMessage("system", "Be brief."),
            new ChatMessage("user", new ChatPart[] { new ImagePart(), new ImagePart(), new TextPart("Same?"), new VideoPart() }),
            new ChatMessage("assistant", "Yes."),
        }, addGenerationPrompt: false, addVisionId: true);
        Assert.Equal(
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n" +
            "Picture 1: <|vision_start|><|image_pad|><|vision_end|>Picture 2: <|vision_start|><|image_pad|><|vision_end|>Same?" +
            "Video 1: <|vision_start|><|video_pad|><|vision_end|><|im_end|>\n<|im_start|>assistant\nYes.<|im_end|>\n", text);
    }

    [Fact]
    public void Image_pads_expand_in_order_and_counts_must_match()
    {
        const string p = "<|image_pad|>";
        Assert.Equal($"a{p}{p}b{p}{p}{p}c", ChatTemplate.ExpandImagePads($"a{p}b{p}c", new[] { 2, 3 }));
        Assert.Throws<ArgumentException>(() => ChatTemplate.ExpandImagePads($"a{p}b", new[] { 2, 3 }));
        Assert.Throws<ArgumentException>(() => ChatTemplate.ExpandImagePads($"a{p}b{p}", new[] { 2 }));
    }
}
