using VisualRft.Geometry;

namespace VisualRft.Rewards.Parsing;

/// <summary>Why an answer (or a solution) could not be read, as data a view can show next to the completion.</summary>
public enum ParseFailureKind
{
    /// <summary>The text is empty (or only whitespace) where an answer was expected.</summary>
    EmptyAnswer,
    /// <summary>The box list is not valid JSON after the repairs the preset applies.</summary>
    InvalidJson,
    /// <summary>The parsed value is not a non-empty list of box objects.</summary>
    NotAList,
    /// <summary>A list element is not an object with the expected keys.</summary>
    InvalidElement,
    /// <summary>A <c>Position</c> is not four finite numbers.</summary>
    InvalidPosition,
    /// <summary>A <c>Confidence</c> is not a number, or (strict) not finite or outside [0, 1].</summary>
    InvalidConfidence,
    /// <summary>No <c>(x1,y1),(x2,y2)</c> box was found.</summary>
    NoBox,
    /// <summary>(strict) The grounding answer gives more than one box.</summary>
    MultipleBoxes,
    /// <summary>(strict) The class answer names several classes (e.g. "A or B").</summary>
    MultipleClasses,
    /// <summary>The class answer does not match the ground truth.</summary>
    WrongClass,
    /// <summary>The solution (ground truth) could not be read.</summary>
    InvalidSolution,
    /// <summary>(visual-rft) The official code would have raised an exception here, which it turns into reward 0.</summary>
    OfficialCodeError,
}

/// <summary>A reason an answer scored 0 on its task component, with a human-readable message.</summary>
public sealed record ParseFailure(ParseFailureKind Kind, string Message)
{
    public override string ToString() => $"{Kind}: {Message}";
}

/// <summary>What the reward read out of a completion: the answer text it used and, if reading failed, why.</summary>
public abstract record ParsedAnswer(string AnswerText, ParseFailure? Failure);

/// <summary>One predicted detection: its box (in the frame the model answered in, 0–1000 for Qwen2-VL) and confidence.</summary>
public sealed record DetectionBox(Box Position, double Confidence);

/// <summary>
/// A detection answer: the boxes found (every element of the list that has a 4-number <c>Position</c> and a numeric
/// <c>Confidence</c>, in output order, the first of each position — exact duplicates removed as the reward removes them;
/// a solution's boxes are all kept), and whether it said "No Objects".
/// </summary>
public sealed record DetectionAnswer(string AnswerText, IReadOnlyList<DetectionBox> Boxes, bool NoObjects, ParseFailure? Failure)
    : ParsedAnswer(AnswerText, Failure);

/// <summary>
/// A grounding answer: the box scored (0–1000 frame; under visual-rft the official corner pairing, so with two boxes it
/// is the two top-left corners, spec §4.9) and how many <c>(x1,y1),(x2,y2)</c> boxes the text held.
/// </summary>
public sealed record GroundingAnswer(string AnswerText, Box? Box, int BoxCount, ParseFailure? Failure)
    : ParsedAnswer(AnswerText, Failure);

/// <summary>A classification answer and its normalised form (the form that is compared with the ground truth).</summary>
public sealed record ClassificationAnswer(string AnswerText, string Normalized, ParseFailure? Failure)
    : ParsedAnswer(AnswerText, Failure);
