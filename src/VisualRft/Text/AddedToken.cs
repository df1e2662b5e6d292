namespace VisualRft.Text;

/// <summary>A token matched verbatim before normalisation and BPE (tokenizer.json <c>added_tokens</c>); special ones are
/// dropped by <c>Decode(skipSpecialTokens: true)</c>.</summary>
public sealed record AddedToken(string Content, int Id, bool Special = true);
