namespace VisualRft;

/// <summary>
/// The three Visual-RFT tasks (visual-rft-spec.md §4 table): which answer format a prompt asks for, which reward scores
/// it and which metric evaluates it. One per training script of the paper; open-vocabulary detection is detection
/// (its manifests say so with <c>DatasetManifest.OpenVocabulary</c>).
/// </summary>
public enum VisualTask { Detection, Classification, Grounding }
