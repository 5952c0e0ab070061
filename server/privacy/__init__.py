"""What never reaches the model: secret redaction, secret-bearing files, the redacted view of a document."""
