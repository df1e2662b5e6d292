namespace VisualRft;

/// <summary>
/// How files, command options and requests spell an enum's values: its member names in kebab case
/// (<see cref="VisualTask.Detection"/> is <c>detection</c>, <c>Rewards.RewardPreset.VisualRft</c> is <c>visual-rft</c>).
/// The names come from the enum itself, so a new member is spelled, listed and parsed everywhere at once.
/// </summary>
public static class EnumNames
{
    /// <summary>Every value's name, in the order of the values.</summary>
    public static string[] All<T>() where T : struct, Enum => [.. Table<T>.Names];

    public static string Of<T>(T value) where T : struct, Enum =>
        Table<T>.ByValue.TryGetValue(value, out var name) ? name : throw new ArgumentOutOfRangeException(nameof(value), value, $"not a {typeof(T).Name}");

    /// <summary>The value spelled exactly <paramref name="name"/> (case-sensitive, as the names are written).</summary>
    public static bool TryParse<T>(string name, out T value) where T : struct, Enum => Table<T>.ByName.TryGetValue(name, out value);

    /// <summary>As <see cref="TryParse{T}"/>; an unknown name is an <see cref="ArgumentException"/> saying
    /// "unknown <paramref name="what"/> 'name'; expected one of ...".</summary>
    public static T Parse<T>(string name, string what) where T : struct, Enum =>
        TryParse<T>(name, out var value) ? value : throw new ArgumentException(Unknown<T>($"'{name}'", what));

    /// <summary>The message for a name that is none of <typeparamref name="T"/>'s, given as <paramref name="shown"/>
    /// (quoted or previewed by the caller).</summary>
    public static string Unknown<T>(string shown, string what) where T : struct, Enum =>
        $"unknown {what} {shown}; expected one of {string.Join(", ", Table<T>.Names)}";

    static class Table<T> where T : struct, Enum
    {
        public static readonly T[] Values = Enum.GetValues<T>();
        public static readonly string[] Names = [.. Values.Select(v => Kebab(v.ToString()))];
        public static readonly Dictionary<T, string> ByValue = Values.Zip(Names).ToDictionary(p => p.First, p => p.Second);
        public static readonly Dictionary<string, T> ByName = Values.Zip(Names).ToDictionary(p => p.Second, p => p.First, StringComparer.Ordinal);
    }

    static string Kebab(string member)
    {
        var sb = new System.Text.StringBuilder(member.Length + 4);
        for (int i = 0; i < member.Length; i++)
        {
            if (i > 0 && char.IsUpper(member[i]) && !char.IsUpper(member[i - 1])) sb.Append('-');
            sb.Append(char.ToLowerInvariant(member[i]));
        }
        return sb.ToString();
    }
}
