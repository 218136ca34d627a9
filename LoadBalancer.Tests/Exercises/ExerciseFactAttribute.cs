namespace LoadBalancer.Tests.Exercises;

// An exercise's test: it fails until the reader does the exercise, so a newcomer's first plain
// `dotnet test` must not run it. It runs only when asked for: LB_EXERCISES=1 (docs/exercises.md).
// Without it the test is reported as skipped, with the command that runs it.
public sealed class ExerciseFactAttribute : FactAttribute
{
    public const string Variable = "LB_EXERCISES";

    public ExerciseFactAttribute()
    {
        if (Environment.GetEnvironmentVariable(Variable) != "1")
            Skip = $"an exercise: run it with {Variable}=1 dotnet test LoadBalancer.sln --filter \"Category=Exercise\" (docs/exercises.md)";
    }
}
