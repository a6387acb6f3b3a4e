namespace Backprop;

/// <summary>
/// Bad user input: a file, a flag value or a data set that cannot be used. The message is one line
/// that names the file, line or option; the command line prints it without a stack trace.
/// </summary>
public sealed class InvalidInputException : Exception
{
    /// <summary>Creates the exception with a one-line message.</summary>
    public InvalidInputException(string message) : base(message) { }

    /// <summary>Creates the exception with a one-line message and its cause.</summary>
    public InvalidInputException(string message, Exception inner) : base(message, inner) { }

    /// <summary>For serialization frameworks.</summary>
    public InvalidInputException() { }
}
