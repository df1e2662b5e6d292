using VisualRft.Imaging;
using VisualRft.IO;
using VisualRft.Text;
using VisualRft.Torch;

namespace VisualRft.Tests.Text;

public class Qwen2VLProcessorTests
{
    public Qwen2VLProcessorTests() => TorchRuntime.EnsureLoaded();

    static readonly Qwen2VLProcessor Processor = new(BpeTrainerTests.Tiny(), new Qwen2VLImageProcessor());
    static string ImagePath(string name) => Path.Combine(Golden.Dir, $"image_{name}.png");

    [Fact]
    public void Single_prompt_tokenizes_the_rendered_template_with_expanded_pads()
    {
        var batch = Processor.Process(ImagePath("A"), "Detect the dog.");
        var tok = Processor.Tokenizer;
        var expectedText = ChatTemplate.ExpandImagePads(ChatTemplate.ImageQuestion("Detect the dog."), new[] { 6 });
        Assert.Equal(tok.Encode(expectedText).Select(i => (long)i), batch.InputIds);
        Assert.All(batch.AttentionMask, m => Assert.Equal(1, m));
        Assert.Equal(6, batch.InputIds.Count(i => i == tok.RequireId(Qwen2Tokenizer.ImagePad)));
        Assert.Equal(new long[] { 1, 4, 6 }, batch.ImageGridThwTensor()!.data<long>().ToArray());
        Assert.Equal(new long[] { 24, 1176 }, batch.PixelValuesTensor()!.shape);
    }

    [Fact]
    public void Batches_are_left_padded_with_the_pad_id_and_keep_image_order()
    {
        var a = ImageLoader.Load(ImagePath("A"));
        var b = ImageLoader.Load(ImagePath("B"));
        var batch = Processor.Process(new[] { (a, "Detect the dog."), (b, "Detect all objects belonging to the category 'dog' in the image.") });
        var single = new[] { Processor.Process(a, "Detect the dog."), Processor.Process(b, "Detect all objects belonging to the category 'dog' in the image.") };
        int len = batch.SequenceLength;
        Assert.Equal(Math.Max(single[0].SequenceLength, single[1].SequenceLength), len);
        for (int r = 0; r < 2; r++)
        {
            int pad = len - single[r].SequenceLength;
            Assert.Equal(single[r].InputIds, batch.Row(r).ToArray());
            Assert.All(batch.InputIds.AsSpan(r * len, pad).ToArray(), id => Assert.Equal(Processor.PadTokenId, id));
            Assert.Equal(Enumerable.Repeat(0L, pad).Concat(Enumerable.Repeat(1L, len - pad)), batch.AttentionMask.AsSpan(r * len, len).ToArray());
        }
        Assert.True(len > single[0].SequenceLength, "the first prompt is the shorter one and gets padding");
        Assert.Equal(single[0].Images!.PixelValues.Concat(single[1].Images!.PixelValues), batch.Images!.PixelValues);
        Assert.Equal(new[] { (1, 4, 6), (1, 4, 8) }, batch.Images.GridThw);
    }

    [Fact]
    public void Mismatched_images_and_placeholders_are_refused()
    {
        var a = ImageLoader.Load(ImagePath("A"));
        Assert.Throws<ArgumentException>(() => Processor.Process(new[] { ChatTemplate.ImageQuestion("x") }, new[] { a, a }));
        Assert.Throws<ArgumentException>(() => Processor.Process(new[] { ChatTemplate.ImageQuestion("x") + ChatTemplate.ImageQuestion("y") }, new[] { a }));
    }

    // The fixture prompts are [304, 10, 11, 12, 302] + [300]*n + [303] + words + [305, 304, 30, 31] (golden README):
    // the image span and the user turn's special-token skeleton must agree with ours, and left padding with pad 306
    // must reproduce the reference batch.
    [Theory]
    [Trait("Category", "Golden")]
    [InlineData("qwen2_vl")]
    [InlineData("qwen2_5_vl")]
    public void Token_layout_and_left_padding_match_the_fixture(string kind)
    {
        var reference = SafeTensors.Load(Path.Combine(Golden.Dir, kind, "reference.safetensors"));
        var tok = Processor.Tokenizer;
        var toTiny = new Dictionary<long, long>
        {
            [tok.RequireId(Qwen2Tokenizer.ImagePad)] = 300, [tok.RequireId(Qwen2Tokenizer.VisionStart)] = 302,
            [tok.RequireId(Qwen2Tokenizer.VisionEnd)] = 303, [tok.RequireId(Qwen2Tokenizer.ImStart)] = 304, [tok.RequireId(Qwen2Tokenizer.ImEnd)] = 305,
        };
        var prompts = new List<int[]>();
        foreach (var (name, words) in new[] { ("A", new[] { 20, 21, 22 }), ("B", new[] { 40, 41, 42, 43, 44 }) })
        {
            var ours = Processor.Process(ImagePath(name), "Detect the dog.").InputIds;
            var skeleton = ours.SkipWhile(id => id != tok.RequireId(Qwen2Tokenizer.VisionStart)).Where(toTiny.ContainsKey).Select(id => toTiny[id]).ToArray();
            int n = skeleton.Count(id => id == 300);
            var fixturePrompt = new[] { 304, 10, 11, 12, 302 }.Concat(Enumerable.Repeat(300, n)).Append(303).Concat(words).Concat(new[] { 305, 304, 30, 31 }).ToArray();
            Assert.Equal(fixturePrompt.Where(id => id >= 300).Skip(1).Select(id => (long)id), skeleton);
            prompts.Add(fixturePrompt);
        }
        Assert.Equal(reference["input_ids_A"].data<long>().ToArray(), prompts[0].Select(i => (long)i));
        var (ids, mask, len) = Qwen2VLProcessor.PadLeft(prompts, 306);
        Assert.Equal(reference["input_ids_batch"].shape, new long[] { 2, len });
        Assert.Equal(reference["input_ids_batch"].data<long>().ToArray(), ids);
        Assert.Equal(reference["attention_mask_batch"].data<long>().ToArray(), mask);
    }
}
