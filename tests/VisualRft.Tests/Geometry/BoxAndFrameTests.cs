using CsCheck;
using VisualRft.Geometry;

namespace VisualRft.Tests.Geometry;

public class BoxAndFrameTests
{
    [Fact]
    public void IoUFollowsTheOfficialDefinition()
    {
        var gt = new Box(100, 100, 300, 300);
        Assert.Equal(0.995, Box.IoU(gt, new Box(100, 101, 300, 300)), 15);
        Assert.Equal(1.0, Box.IoU(gt, gt));
        Assert.Equal(0.0, Box.IoU(gt, new Box(300, 100, 400, 300)));   // touching edge: xi2 <= xi1
        Assert.Equal(0.0, Box.IoU(gt, new Box(300, 100, 100, 300)));   // inverted never intersects
        Assert.Equal(0.5, Box.IoU(new Box(0, 10, 100, 110), new Box(0, 11, 100, 61)));
    }

    [Fact]
    public void GIoUIsTheLisaVariant()
    {
        var gt = new Box(0.1, 0.1, 0.3, 0.3);
        Assert.Equal(1.0, Box.GIoU(gt, gt));
        Assert.Equal(1.0, Box.GIoU(gt, new Box(0.3, 0.3, 0.1, 0.1)));   // swapped corners: the bug of spec §4.9
        Assert.Equal(-1.0 / 3, Box.GIoU(new Box(0, 0, 1, 1), new Box(2, 0, 3, 1)), 12);
    }

    [Fact]
    public void DegenerateAndInvertedBoxesAreDefined()
    {
        var inv = new Box(300, 100, 100, 300);
        Assert.True(inv.IsInverted);
        Assert.Equal(-40000, inv.Area);
        Assert.Equal(new Box(100, 100, 300, 300), inv.Normalized());
        Assert.Equal(40000, new Box(300, 300, 100, 100).Area);   // inverted on both axes: positive, as the original computes
        Assert.True(new Box(5, 5, 5, 9).IsDegenerate);
        Assert.False(new Box(0, double.NaN, 1, 1).IsFinite);
    }

    [Fact]
    public void QwenTwoPointFiveResizedPixelsMapToTheOtherFrames()
    {
        // H480×W640 → 476×644 after smart_resize (qwen2vl-spec.md §4.1).
        var frames = new ImageFrames(new ImageSize(640, 480), new ImageSize(644, 476));
        var resized = new FramedBox(new Box(0, 0, 644, 476), CoordinateFrame.ResizedPixels);
        Assert.Equal(new Box(0, 0, 1000, 1000), frames.Convert(resized, CoordinateFrame.Normalized1000).Box);
        Assert.Equal(new Box(0, 0, 640, 480), frames.Convert(resized, CoordinateFrame.OriginalPixels).Box);
        Assert.Equal(new Box(320, 240, 640, 480), frames.Convert(new Box(500, 500, 1000, 1000), CoordinateFrame.Normalized1000, CoordinateFrame.OriginalPixels));
    }

    [Fact]
    public void FramesMustMatchToCompare()
    {
        var a = new FramedBox(new Box(0, 0, 10, 10), CoordinateFrame.Normalized1000);
        var b = new FramedBox(new Box(0, 0, 10, 10), CoordinateFrame.ResizedPixels);
        Assert.Throws<ArgumentException>(() => FramedBox.IoU(a, b));
        Assert.Throws<ArgumentException>(() => new ImageFrames(new ImageSize(0, 10), new ImageSize(28, 28)).Convert(a, CoordinateFrame.OriginalPixels));
    }

    static readonly Gen<ImageSize> Size = Gen.Select(Gen.Int[1, 5000], Gen.Int[1, 5000], (w, h) => new ImageSize(w, h));
    static readonly Gen<Box> AnyBox = Gen.Select(Gen.Double[-100, 1100], Gen.Double[-100, 1100], Gen.Double[-100, 1100], Gen.Double[-100, 1100],
        (a, b, c, d) => new Box(a, b, c, d));

    [Fact]
    public void ConversionsRoundTripThroughEveryFrame() =>
        Gen.Select(Size, Size, AnyBox, Gen.Enum<CoordinateFrame>(), Gen.Enum<CoordinateFrame>()).Sample((orig, resized, box, from, via) =>
        {
            var frames = new ImageFrames(orig, resized);
            var start = new FramedBox(box, from);
            var back = frames.Convert(frames.Convert(frames.Convert(start, via), CoordinateFrame.OriginalPixels), from);
            Assert.Equal(from, back.Frame);
            foreach (var (x, y) in new[] { (box.X1, back.Box.X1), (box.Y1, back.Box.Y1), (box.X2, back.Box.X2), (box.Y2, back.Box.Y2) })
                Assert.True(Math.Abs(x - y) <= 1e-9 * Math.Max(1, Math.Abs(x)), $"{box} -> {back.Box}");
            // IoU is invariant under a per-axis scale, so it does not depend on the frame it is computed in.
            var other = new FramedBox(new Box(box.X1 + 10, box.Y1, box.X2 + 10, box.Y2), from);
            double iou = FramedBox.IoU(start, other);
            double iouVia = FramedBox.IoU(frames.Convert(start, via), frames.Convert(other, via));
            Assert.True(Math.Abs(iou - iouVia) < 1e-9, $"{iou} vs {iouVia}");
        }, iter: 500, threads: 1);
}
