"""Stage 3: one clean row per listing across admitted batches; excluded rows keep their reason."""
