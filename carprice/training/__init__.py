"""Stage 4: features, the price model, its evaluation against the champion, and the model registry."""
